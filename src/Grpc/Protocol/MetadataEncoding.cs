using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace ChatServices.Grpc.Protocol;

/// <summary>
/// Custom metadata on the wire: string values as they are; values of <c>-bin</c> keys base64-encoded (sent
/// padded, accepted with or without padding). Several values of one key may share a header, comma-separated.
/// </summary>
internal static class MetadataEncoding
{
    public static string EncodeValue(Metadata.Entry entry) => entry.IsBinary ? Convert.ToBase64String(entry.ValueBytes) : entry.Value;

    /// <summary>Adds every non-reserved header to <paramref name="metadata"/>.</summary>
    public static void AddFromHeaders(Metadata metadata, IHeaderDictionary headers)
    {
        foreach (var (key, values) in headers)
        {
            if (GrpcProtocol.IsReservedHeader(key))
            {
                continue;
            }

            foreach (var value in values)
            {
                AddDecoded(metadata, key, value);
            }
        }
    }

    public static void AddFromHeaders(Metadata metadata, HttpHeaders headers)
    {
        foreach (var (key, values) in headers.NonValidated)
        {
            if (GrpcProtocol.IsReservedHeader(key))
            {
                continue;
            }

            foreach (var value in values)
            {
                AddDecoded(metadata, key, value);
            }
        }
    }

    public static void WriteTo(Metadata metadata, IHeaderDictionary headers)
    {
        foreach (var entry in metadata)
        {
            if (GrpcProtocol.IsReservedHeader(entry.Key))
            {
                continue;
            }

            headers.Append(entry.Key, EncodeValue(entry));
        }
    }

    public static void WriteTo(Metadata metadata, HttpRequestHeaders headers)
    {
        foreach (var entry in metadata)
        {
            if (GrpcProtocol.IsReservedHeader(entry.Key))
            {
                throw new ArgumentException($"'{entry.Key}' is a reserved gRPC header, not custom metadata.");
            }

            headers.TryAddWithoutValidation(entry.Key, EncodeValue(entry));
        }
    }

    private static void AddDecoded(Metadata metadata, string key, string? value)
    {
        if (value is null)
        {
            return;
        }

        var lower = key.ToLowerInvariant();
        if (!Metadata.Entry.IsBinaryKey(lower))
        {
            if (IsPrintableAscii(value))
            {
                metadata.Add(lower, value);
            }

            return;
        }

        foreach (var part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (TryDecodeBase64(part, out var bytes))
            {
                metadata.Add(lower, bytes);
            }
        }
    }

    private static bool IsPrintableAscii(string value)
    {
        foreach (var c in value)
        {
            if (c is < ' ' or > '~')
            {
                return false;
            }
        }

        return true;
    }

    internal static bool TryDecodeBase64(string value, out byte[] bytes)
    {
        var padded = (value.Length % 4) switch
        {
            2 => value + "==",
            3 => value + "=",
            _ => value,
        };
        bytes = new byte[padded.Length / 4 * 3];
        if (Convert.TryFromBase64String(padded, bytes, out var written))
        {
            bytes = bytes[..written];
            return true;
        }

        bytes = [];
        return false;
    }
}

internal static class HeaderDictionaryExtensions
{
    public static string? GetSingle(this IHeaderDictionary headers, string key)
    {
        var values = headers[key];
        return StringValues.IsNullOrEmpty(values) ? null : values[0];
    }
}
