using System.Text;
using UmlMicro.Contracts.Linux;

namespace UmlMicro.ContractTests;

/// <summary>
/// The path encoding every contract uses (<see cref="PathBytes"/>): any byte string but NUL goes to a string and
/// back unchanged, and the map is one to one.
/// </summary>
[Trait(Kit.Kind, Kit.Document)]
public sealed class PathBytesTests
{
    private static byte[] B(params int[] b) => b.Select(x => (byte)x).ToArray();

    public static TheoryData<byte[], string> Cases => new()
    {
        { B(), "" },
        { Encoding.ASCII.GetBytes("/usr/bin/env"), "/usr/bin/env" },
        { Encoding.UTF8.GetBytes("/tmp/caf\u00e9/\u65e5\u672c/\U0001F600"), "/tmp/caf\u00e9/\u65e5\u672c/\U0001F600" },
        // Latin-1 é: a lone lead byte.
        { B(0xE9), "\uF7E9" },
        { B('a', 0xE9, 'b'), "a\uF7E9b" },
        { B(0xFF, 0xFE), "\uF7FF\uF7FE" },
        // Lone continuation bytes.
        { B(0x80), "\uF780" },
        { B(0xBF, 0x80), "\uF7BF\uF780" },
        // Overlong encodings: of '/' (C0 AF) and of NUL (C0 80), and a three-byte overlong (E0 80 AF).
        { B(0xC0, 0xAF), "\uF7C0\uF7AF" },
        { B(0xC0, 0x80), "\uF7C0\uF780" },
        { B(0xE0, 0x80, 0xAF), "\uF7E0\uF780\uF7AF" },
        // A surrogate encoded in UTF-8 (CESU-style), and a surrogate pair so encoded.
        { B(0xED, 0xA0, 0x80), "\uF7ED\uF7A0\uF780" },
        { B(0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80), "\uF7ED\uF7A0\uF7BD\uF7ED\uF7B8\uF780" },
        // Truncated sequences: at the end, and before an ASCII byte.
        { B('x', 0xE6, 0x97), "x\uF7E6\uF797" },
        { B(0xF0, 0x9F, 0x98, 'z'), "\uF7F0\uF79F\uF798z" },
        // Beyond U+10FFFF, and bytes that never occur in UTF-8.
        { B(0xF4, 0x90, 0x80, 0x80), "\uF7F4\uF790\uF780\uF780" },
        { B(0xF5, 0xF8, 0xFC), "\uF7F5\uF7F8\uF7FC" },
        // Valid UTF-8 of the escape range itself (U+F7E9 is EF 9F A9): escaped byte by byte, so that it is not
        // the same string as the single byte E9.
        { B(0xEF, 0x9F, 0xA9), "\uF7EF\uF79F\uF7A9" },
        { B(0xEF, 0x9E, 0x80), "\uF7EF\uF79E\uF780" },
        { B(0xEF, 0x9F, 0xBF), "\uF7EF\uF79F\uF7BF" },
        // Just outside it: U+F77F (EF 9D BF) and U+F800 (EF A0 80) are ordinary characters.
        { B(0xEF, 0x9D, 0xBF), "\uF77F" },
        { B(0xEF, 0xA0, 0x80), "\uF800" },
        // Valid and invalid mixed.
        { B('/', 0xC3, 0xA9, 0xE9, '/', 0xE2, 0x82, 0xAC), "/\u00e9\uF7E9/\u20ac" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decodes_and_encodes_back(byte[] bytes, string expected)
    {
        string s = PathBytes.Decode(bytes);
        Assert.Equal(expected, s);
        Assert.Equal(bytes, PathBytes.Encode(s));
        Assert.Equal(bytes.Length, PathBytes.ByteCount(s));
        Assert.Equal([.. bytes, 0], PathBytes.EncodeZ(s));
        Assert.Equal(s, PathBytes.DecodeZ([.. bytes, 0, 0x41]));
    }

    [Fact]
    public void Every_string_of_escapes_is_its_bytes()
    {
        for (int b = 0x80; b <= 0xFF; b++)
        {
            string s = ((char)(PathBytes.Base + b)).ToString();
            Assert.Equal(B(b), PathBytes.Encode(s));
            Assert.Equal(s, PathBytes.Decode(B(b)));
        }
    }

    [Fact]
    public void Every_short_byte_string_round_trips_and_none_collide()
    {
        // All strings of one and two bytes (no NUL), and three bytes over a set that covers every kind of lead and
        // continuation byte: each decodes to a string of its own, which encodes back to it.
        var seen = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        void Check(byte[] bytes)
        {
            string s = PathBytes.Decode(bytes);
            Assert.Equal(bytes, PathBytes.Encode(s));
            if (seen.TryGetValue(s, out var other) && other.AsSpan().SequenceEqual(bytes)) return;
            Assert.True(seen.TryAdd(s, bytes), $"{Convert.ToHexString(bytes)} and {Convert.ToHexString(seen.GetValueOrDefault(s) ?? [])} give the same string");
            Assert.Equal(s, PathBytes.Decode(PathBytes.Encode(s)));
        }
        for (int a = 1; a < 256; a++)
        {
            Check(B(a));
            for (int b = 1; b < 256; b++) Check(B(a, b));
        }
        int[] sample = [0x41, 0x7F, 0x80, 0x9E, 0x9F, 0xA0, 0xA9, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xE9, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF];
        foreach (int a in sample)
            foreach (int b in sample)
                foreach (int c in sample)
                    foreach (int d in new[] { 0x41, 0x80, 0x9F, 0xBF, 0xEF })
                    {
                        Check(B(a, b, c));
                        Check(B(a, b, c, d));
                    }
    }

    [Fact]
    public void A_valid_name_holding_the_escape_range_literally_round_trips()
    {
        // A guest name "x\uF7E9" (valid UTF-8: 78 EF 9F A9) is not the name "x\xE9".
        byte[] literal = Encoding.UTF8.GetBytes("x\uF7E9");
        byte[] raw = B('x', 0xE9);
        Assert.NotEqual(PathBytes.Decode(literal), PathBytes.Decode(raw));
        Assert.Equal(literal, PathBytes.Encode(PathBytes.Decode(literal)));
        Assert.Equal(raw, PathBytes.Encode(PathBytes.Decode(raw)));
    }

    [Fact]
    public void A_lone_surrogate_is_no_path_and_encodes_as_the_replacement_character()
    {
        Assert.Equal(B(0xEF, 0xBF, 0xBD), PathBytes.Encode("\uD800"));
        Assert.Equal(3, PathBytes.ByteCount("\uD800"));
    }
}
