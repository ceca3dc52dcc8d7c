using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using StreamJsonRpc;

namespace UmlMicro.Contracts.Servers;

/// <summary>
/// The wire both ends agree on: JSON-RPC 2.0, one compact JSON message per line, System.Text.Json. A server in
/// another language only needs to read and write lines.
/// </summary>
public static class RpcWire
{
    public static JsonRpc Create(Stream sending, Stream receiving) =>
        new(new NewLineDelimitedMessageHandler(sending, receiving, new SystemTextJsonFormatter()));
}
