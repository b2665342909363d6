namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// GPT-2's reversible byte ↔ character mapping: printable Latin-1 bytes stand for themselves, the other 68 bytes
/// map to U+0100 onwards, so that every byte string is a string of visible characters (a space is 'Ġ').
/// </summary>
internal static class ByteLevelAlphabet
{
    /// <summary>Character for each byte value.</summary>
    public static readonly char[] ByteToChar = Build();

    /// <summary>Byte for each alphabet character (indexed by char, -1 where the character is not in the alphabet).</summary>
    public static readonly short[] CharToByte = Invert(ByteToChar);

    private static char[] Build()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }

    private static short[] Invert(char[] map)
    {
        var inverse = new short[0x200];
        Array.Fill(inverse, (short)-1);
        for (var b = 0; b < 256; b++) inverse[map[b]] = (short)b;
        return inverse;
    }

    /// <summary>The byte an alphabet character stands for, or -1.</summary>
    public static int ToByte(char c) => c < CharToByte.Length ? CharToByte[c] : -1;
}
