using System.Buffers.Binary;

namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// The keyset cursor of a listing: the (updated_at, id) of the last conversation on the previous page. Opaque to
/// callers (base64url of a versioned binary record); anything that does not decode to exactly that record is
/// refused as invalid. It carries no secret: a token only narrows a query that is already limited to its owner.
/// </summary>
internal readonly record struct PageToken(long UpdatedAtMicros, Guid Id)
{
    private const byte FormatVersion = 1;
    private const int Length = 1 + 8 + 16;

    public string Encode()
    {
        Span<byte> bytes = stackalloc byte[Length];
        bytes[0] = FormatVersion;
        BinaryPrimitives.WriteInt64BigEndian(bytes[1..], UpdatedAtMicros);
        Id.TryWriteBytes(bytes[9..], bigEndian: true, out _);
        return Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    public static PageToken Decode(string token)
    {
        const int encodedLength = (Length * 4 + 2) / 3; // unpadded base64 of 25 bytes: 34 characters
        if (token.Length != encodedLength)
            throw Invalid();
        var base64 = token.Replace('-', '+').Replace('_', '/') + "==";
        Span<byte> bytes = stackalloc byte[Length + 2];
        if (!Convert.TryFromBase64String(base64, bytes, out var written) || written != Length || bytes[0] != FormatVersion)
            throw Invalid();
        var micros = BinaryPrimitives.ReadInt64BigEndian(bytes[1..]);
        if (micros < 0) throw Invalid();
        return new PageToken(micros, new Guid(bytes.Slice(9, 16), bigEndian: true));
    }

    private static ConversationValidationException Invalid() =>
        new("pageToken", "The page token is not valid; pass the token of the previous page unchanged.");
}
