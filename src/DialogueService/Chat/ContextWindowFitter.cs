namespace ChatServices.DialogueService.Chat;

/// <summary>One message of a chat as the fitter sees it.</summary>
/// <param name="Role">"system", "user", "assistant" or "tool".</param>
public readonly record struct DialogueMessage(string Role, string Content)
{
    /// <summary>Assistant messages: the tools the model called.</summary>
    public IReadOnlyList<Tools.FunctionCall>? ToolCalls { get; init; }

    /// <summary>Tool messages: the call this is the result of.</summary>
    public string? ToolCallId { get; init; }

    public bool IsSystem => Role == "system";
}

/// <summary>What <see cref="ContextWindowFitter.Fit"/> decided.</summary>
/// <param name="Messages">The messages to render: every system message, then the newest turns that fit.</param>
/// <param name="PromptTokens">Tokens of the rendered prompt.</param>
/// <param name="DroppedMessages">How many of the oldest non-system messages were left out.</param>
/// <param name="MaxNewTokens">How many tokens the reply may have.</param>
public sealed record FittedPrompt(IReadOnlyList<DialogueMessage> Messages, int PromptTokens, int DroppedMessages, int MaxNewTokens);

/// <summary>The prompt cannot fit even with every droppable message left out.</summary>
public sealed class ContextWindowExceededException(string message) : Exception(message);

/// <summary>
/// Fits a chat into the model's context window minus the room the reply needs: keeps every system message and
/// the newest messages, drops the oldest ones.
/// </summary>
/// <remarks>
/// Messages are dropped from the front in whole steps that keep the kept history starting at a user message, so
/// templates that require user/assistant alternation still render. The prompt is measured by rendering and
/// tokenizing it (<c>countPromptTokens</c>), since templates add tokens of their own; the number to drop is
/// found by binary search over those starting points, so a long history costs O(log n) renderings.
/// </remarks>
public static class ContextWindowFitter
{
    /// <summary>Reply room reserved while fitting when the caller asked for no particular maximum.</summary>
    public const int DefaultReplyReserve = 256;

    /// <summary>The most tokens a reply gets when the caller asked for no particular maximum.</summary>
    public const int DefaultMaxNewTokens = 1024;

    /// <param name="messages">The whole chat, oldest first; it must end with the message to answer.</param>
    /// <param name="contextLength">Tokens the model attends to: prompt plus reply.</param>
    /// <param name="requestedMaxNewTokens">The caller's maximum reply length, or 0 for the default.</param>
    /// <param name="countPromptTokens">Renders messages with the chat template and counts the tokens.</param>
    public static FittedPrompt Fit(
        IReadOnlyList<DialogueMessage> messages,
        int contextLength,
        int requestedMaxNewTokens,
        Func<IReadOnlyList<DialogueMessage>, int> countPromptTokens)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ArgumentNullException.ThrowIfNull(countPromptTokens);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextLength, 2);
        ArgumentOutOfRangeException.ThrowIfNegative(requestedMaxNewTokens);
        if (messages.Count == 0 || messages[^1].IsSystem)
            throw new ArgumentException("The chat must end with a message to answer.", nameof(messages));
        if (requestedMaxNewTokens >= contextLength)
            throw new ContextWindowExceededException(
                $"max_tokens ({requestedMaxNewTokens}) must be less than the model's context length ({contextLength}).");

        var reserve = requestedMaxNewTokens > 0 ? requestedMaxNewTokens : Math.Min(DefaultReplyReserve, contextLength / 4);
        var budget = contextLength - reserve;

        var system = new List<DialogueMessage>();
        var rest = new List<DialogueMessage>();
        foreach (var m in messages) (m.IsSystem ? system : rest).Add(m);

        // Where the kept history may start: 0, and each later user message (the last message is always kept).
        var starts = new List<int> { 0 };
        for (var i = 1; i < rest.Count; i++)
            if (rest[i].Role == "user") starts.Add(i);
        if (starts[^1] != rest.Count - 1 && rest.Count > 0) starts.Add(rest.Count - 1);

        // Binary search for the earliest start whose prompt fits (fewer tokens as the start moves later).
        int lo = 0, hi = starts.Count - 1, found = -1, foundTokens = 0;
        while (lo <= hi)
        {
            var mid = (lo + hi) / 2;
            var tokens = countPromptTokens(Compose(system, rest, starts[mid]));
            if (tokens <= budget)
            {
                found = mid;
                foundTokens = tokens;
                hi = mid - 1;
            }
            else lo = mid + 1;
        }

        if (found < 0)
        {
            var minimal = countPromptTokens(Compose(system, rest, starts[^1]));
            throw new ContextWindowExceededException(
                $"The prompt needs {minimal} tokens even with older messages left out; with {reserve} tokens reserved " +
                $"for the reply it exceeds the model's context length of {contextLength} tokens.");
        }

        var kept = Compose(system, rest, starts[found]);
        var maxNew = requestedMaxNewTokens > 0
            ? requestedMaxNewTokens
            : Math.Min(DefaultMaxNewTokens, contextLength - foundTokens);
        return new FittedPrompt(kept, foundTokens, starts[found], maxNew);
    }

    private static List<DialogueMessage> Compose(List<DialogueMessage> system, List<DialogueMessage> rest, int start)
    {
        var list = new List<DialogueMessage>(system.Count + rest.Count - start);
        list.AddRange(system);
        for (var i = start; i < rest.Count; i++) list.Add(rest[i]);
        return list;
    }
}
