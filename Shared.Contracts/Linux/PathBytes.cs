using System;
using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace UmlMicro.Contracts.Linux;

/// <summary>
/// Linux paths are bytes (any byte but NUL); the contracts carry them as strings. This is the one map between the two,
/// used wherever a path enters or leaves the kernel (guest memory, the host's system calls, host listings, /proc text):
/// <list type="bullet">
/// <item>bytes to string: valid UTF-8 decodes as itself; every byte that is not part of a valid UTF-8 sequence
/// (a lone continuation byte, a truncated or overlong sequence, an encoded surrogate, 0xF5..0xFF) becomes the
/// private-use character U+F700 + byte (U+F780..U+F7FF). A valid sequence that decodes to U+F780..U+F7FF is itself
/// treated as undecodable: its three bytes become three such characters, so no two byte strings give the same string.</item>
/// <item>string to bytes: U+F780..U+F7FF become the byte they stand for, everything else is encoded as UTF-8 (a lone
/// surrogate, which no byte string decodes to, as U+FFFD).</item>
/// </list>
/// Encode(Decode(b)) is b for every byte string; Decode(Encode(s)) is s for every string Decode can give. A name that is
/// valid UTF-8 reads as itself on the wire.
/// </summary>
public static class PathBytes
{
    /// <summary>The first character an undecodable byte 0x80 maps to; byte b maps to Base + b.</summary>
    public const char Base = '\uF700';

    /// <summary>The characters that stand for single bytes: U+F780..U+F7FF.</summary>
    public const char First = '\uF780', Last = '\uF7FF';

    /// <summary>Whether <paramref name="c"/> stands for one raw byte.</summary>
    public static bool IsEscape(char c) => c >= First && c <= Last;

    /// <summary>The string a path's bytes stand for.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        if (Ascii.IsValid(bytes)) return Encoding.ASCII.GetString(bytes);
        // Valid UTF-8 without EF 9E / EF 9F (the lead of U+F780..U+F7FF) decodes as it is.
        if (Utf8.IsValid(bytes) && !HasEscapeLead(bytes)) return Encoding.UTF8.GetString(bytes);
        var sb = new StringBuilder(bytes.Length);
        Span<char> pair = stackalloc char[2];
        int i = 0;
        while (i < bytes.Length)
        {
            byte b = bytes[i];
            if (b < 0x80)
            {
                sb.Append((char)b);
                i++;
                continue;
            }
            if (Rune.DecodeFromUtf8(bytes[i..], out var rune, out int consumed) == OperationStatus.Done
                && !(rune.Value >= First && rune.Value <= Last))
            {
                int n = rune.EncodeToUtf16(pair);
                sb.Append(pair[..n]);
                i += consumed;
                continue;
            }
            sb.Append((char)(Base + b));
            i++;
        }
        return sb.ToString();
    }

    /// <summary>The string a NUL-terminated or plain byte array stands for (up to the first NUL, if any).</summary>
    public static string DecodeZ(ReadOnlySpan<byte> bytes)
    {
        int nul = bytes.IndexOf((byte)0);
        return Decode(nul < 0 ? bytes : bytes[..nul]);
    }

    /// <summary>The bytes <paramref name="path"/> stands for.</summary>
    public static byte[] Encode(string path)
    {
        var bytes = new byte[ByteCount(path)];
        Encode(path, bytes);
        return bytes;
    }

    /// <summary>The bytes <paramref name="path"/> stands for, then a NUL: what the host's system calls take.</summary>
    public static byte[] EncodeZ(string path)
    {
        var bytes = new byte[ByteCount(path) + 1];
        Encode(path, bytes);
        return bytes;
    }

    /// <summary>Writes the bytes of <paramref name="path"/> to <paramref name="into"/> (at least <see cref="ByteCount"/>
    /// long); gives how many were written.</summary>
    public static int Encode(ReadOnlySpan<char> path, Span<byte> into)
    {
        if (!HasEscape(path)) return Encoding.UTF8.GetBytes(path, into);
        int at = 0;
        int i = 0;
        while (i < path.Length)
        {
            char c = path[i];
            if (IsEscape(c))
            {
                into[at++] = (byte)(c - Base);
                i++;
                continue;
            }
            int end = i;
            while (end < path.Length && !IsEscape(path[end])) end++;
            at += Encoding.UTF8.GetBytes(path[i..end], into[at..]);
            i = end;
        }
        return at;
    }

    /// <summary>How many bytes <paramref name="path"/> stands for (NAME_MAX and PATH_MAX count these).</summary>
    public static int ByteCount(ReadOnlySpan<char> path)
    {
        if (!HasEscape(path)) return Encoding.UTF8.GetByteCount(path);
        int count = 0;
        int i = 0;
        while (i < path.Length)
        {
            if (IsEscape(path[i]))
            {
                count++;
                i++;
                continue;
            }
            int end = i;
            while (end < path.Length && !IsEscape(path[end])) end++;
            count += Encoding.UTF8.GetByteCount(path[i..end]);
            i = end;
        }
        return count;
    }

    /// <summary>Whether <paramref name="path"/> holds a byte that is not UTF-8 (an escape).</summary>
    public static bool HasEscape(ReadOnlySpan<char> path) => path.IndexOfAnyInRange(First, Last) >= 0;

    private static bool HasEscapeLead(ReadOnlySpan<byte> bytes)
    {
        for (int i = bytes.IndexOf((byte)0xEF); i >= 0 && i + 1 < bytes.Length; )
        {
            if (bytes[i + 1] is 0x9E or 0x9F) return true;
            int next = bytes[(i + 1)..].IndexOf((byte)0xEF);
            if (next < 0) return false;
            i += 1 + next;
        }
        return false;
    }
}
