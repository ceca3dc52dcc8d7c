namespace UmlMicro.Tests.Integration;

/// <summary>
/// Tests that look at the host's process table (servers left behind, guests killed) run alone, after the
/// parallel ones, so that no other test's supervisor is in the picture.
/// </summary>
[CollectionDefinition("serial", DisableParallelization = true)]
public sealed class SerialCollection
{
}
