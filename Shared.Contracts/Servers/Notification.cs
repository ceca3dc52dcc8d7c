using System;

namespace UmlMicro.Contracts.Servers;

/// <summary>
/// The supervisor sends this method only as a JSON-RPC notification (no id): it never waits for it, so a server's error
/// to it is not heard. Written on the contract so that the generated contract (docs/contract) and the supervisor's
/// table (ContractForwarderTests) say the same. A method without it is always sent as a request. A server must still
/// answer such a method when it does come with an id (the conformance kit sends them so, to see what a server refuses).
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class NotificationAttribute : Attribute;
