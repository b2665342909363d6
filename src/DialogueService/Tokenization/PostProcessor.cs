using System.Text.Json;

namespace ChatServices.DialogueService.Tokenization;

/// <summary>
/// The special tokens a post-processor (tokenizer.json <c>post_processor</c>) puts around a single encoded sequence
/// when special tokens are requested: TemplateProcessing's <c>single</c> template, Bert/Roberta's [CLS] … [SEP];
/// ByteLevel adds none (it only adjusts offsets, which this tokenizer does not report).
/// </summary>
internal sealed record PostProcessor(int[] Prefix, int[] Suffix)
{
    public static readonly PostProcessor None = new([], []);

    public static PostProcessor FromJson(JsonElement e)
    {
        if (e.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined) return None;
        switch (e.Type())
        {
            case "ByteLevel":
                return None;
            case "Sequence":
                var prefix = new List<int>();
                var suffix = new List<int>();
                foreach (var p in e.Array("processors").Select(FromJson))
                {
                    prefix.AddRange(p.Prefix);
                    suffix.InsertRange(0, p.Suffix);
                }
                return new PostProcessor(prefix.ToArray(), suffix.ToArray());
            case "TemplateProcessing":
                return FromTemplate(e);
            case "BertProcessing" or "RobertaProcessing":
                return new PostProcessor([TemplateId(e, "cls")], [TemplateId(e, "sep")]);
            default:
                throw TokenizerFormatException.Unsupported("post_processor", e.Type());
        }
    }

    private static int TemplateId(JsonElement e, string name) =>
        e.Has(name, out var pair) && pair.ValueKind == JsonValueKind.Array && pair.GetArrayLength() == 2
            ? pair[1].GetInt32()
            : throw new TokenizerFormatException($"{e.Type()} post_processor without '{name}'.");

    private static PostProcessor FromTemplate(JsonElement e)
    {
        var prefix = new List<int>();
        var suffix = new List<int>();
        var seenSequence = false;
        foreach (var item in e.Array("single"))
        {
            if (item.Has("Sequence", out _))
            {
                seenSequence = true;
                continue;
            }
            if (!item.Has("SpecialToken", out var special))
                throw new TokenizerFormatException("TemplateProcessing item is neither Sequence nor SpecialToken.");
            var name = special.String("id") ?? throw new TokenizerFormatException("TemplateProcessing SpecialToken without id.");
            if (!e.Has("special_tokens", out var table) || !table.Has(name, out var entry))
                throw new TokenizerFormatException($"TemplateProcessing special token '{name}' is not in special_tokens.");
            foreach (var id in entry.Array("ids")) (seenSequence ? suffix : prefix).Add(id.GetInt32());
        }
        return new PostProcessor(prefix.ToArray(), suffix.ToArray());
    }
}
