using System.Security.Cryptography;

namespace ChatServices.Gateway.Upstream;

/// <summary>Random ids for responses (<c>chatcmpl-…</c>), in the 24-character base-62 style OpenAI uses.</summary>
public static class Ids
{
    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

    public static string New() => RandomNumberGenerator.GetString(Alphabet, 24);
}
