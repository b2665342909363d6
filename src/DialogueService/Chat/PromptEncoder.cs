using ChatServices.DialogueService.Model;

namespace ChatServices.DialogueService.Chat;

/// <summary>A message's content could not be kept as plain text in the rendered prompt.</summary>
public sealed class UntrustedContentException(string message) : Exception(message);

/// <summary>
/// Turns a rendered prompt into token ids so that the chat template's own control tokens are control tokens and
/// nothing a user wrote ever is.
/// </summary>
/// <remarks>
/// The rendered prompt mixes the template's markup (special-token strings such as <c>&lt;|im_start|&gt;</c>,
/// which must become those tokens) with message contents (which must not, whatever they contain). Contents that
/// contain no special-token string need nothing: encoding the whole prompt with special tokens parsed is exact
/// for them. For a content that does, its place in the prompt is found (contents appear in order, verbatim or
/// trimmed, in the templates this serves) and each special-token string inside it is encoded as plain text.
/// A content the template changed beyond recognition cannot be protected, so it is refused rather than risk
/// injecting a control token.
/// </remarks>
public static class PromptEncoder
{
    /// <param name="untrustedContents">The message contents, in message order (index = message index).</param>
    public static int[] Encode(ServedModel model, string prompt, IReadOnlyList<string> untrustedContents)
    {
        var specials = model.SpecialTokenStrings;
        List<(int Start, int Length)>? plain = null;
        var cursor = 0;
        for (var i = 0; i < untrustedContents.Count; i++)
        {
            var content = untrustedContents[i];
            if (!ContainsAny(content, specials)) continue;
            var located = Locate(prompt, content, cursor);
            if (located.Start < 0)
                throw new UntrustedContentException(
                    $"messages[{i}].content contains a control-token string that the chat template altered, so it cannot be kept as plain text; remove it.");
            plain ??= [];
            foreach (var special in specials)
            {
                for (var at = located.Text.IndexOf(special, StringComparison.Ordinal); at >= 0;
                     at = located.Text.IndexOf(special, at + special.Length, StringComparison.Ordinal))
                    plain.Add((located.Start + at, special.Length));
            }
            cursor = located.Start + located.Text.Length;
        }

        if (plain is null) return model.EncodePrompt(prompt);

        plain.Sort((a, b) => a.Start.CompareTo(b.Start));
        var ids = new List<int>(prompt.Length / 3 + 8);
        var pos = 0;
        foreach (var (start, length) in plain)
        {
            if (start < pos) continue; // overlapping matches of two special strings: the first one covers it
            model.Tokenizer.Encode(prompt[pos..start], ids, addSpecialTokens: false, parseSpecialTokens: true);
            model.Tokenizer.Encode(prompt.Substring(start, length), ids, addSpecialTokens: false, parseSpecialTokens: false);
            pos = start + length;
        }
        model.Tokenizer.Encode(prompt[pos..], ids, addSpecialTokens: false, parseSpecialTokens: true);
        return [.. ids];
    }

    private static bool ContainsAny(string text, IReadOnlyList<string> needles)
    {
        foreach (var n in needles)
            if (text.Contains(n, StringComparison.Ordinal)) return true;
        return false;
    }

    private static (int Start, string Text) Locate(string prompt, string content, int from)
    {
        var at = prompt.IndexOf(content, from, StringComparison.Ordinal);
        if (at >= 0) return (at, content);
        var trimmed = content.Trim();
        at = trimmed.Length == 0 ? -1 : prompt.IndexOf(trimmed, from, StringComparison.Ordinal);
        return (at, trimmed);
    }
}
