using ChatServices.DialogueService.Chat;

namespace ChatServices.DialogueService.Tests.Chat;

public sealed class ContextWindowFitterTests
{
    // A stand-in template measure: 3 tokens of framing per message plus one per character of content.
    private static int Count(IReadOnlyList<DialogueMessage> messages) => messages.Sum(m => 3 + m.Content.Length);

    private static DialogueMessage S(string c) => new("system", c);
    private static DialogueMessage U(string c) => new("user", c);
    private static DialogueMessage A(string c) => new("assistant", c);

    [Fact]
    public void A_chat_that_fits_is_kept_whole()
    {
        DialogueMessage[] chat = [S("be brief"), U("hi"), A("hello"), U("how are you")];
        var fit = ContextWindowFitter.Fit(chat, contextLength: 200, requestedMaxNewTokens: 50, Count);
        Assert.Equal(chat, fit.Messages);
        Assert.Equal(0, fit.DroppedMessages);
        Assert.Equal(Count(chat), fit.PromptTokens);
        Assert.Equal(50, fit.MaxNewTokens);
    }

    [Fact]
    public void The_oldest_turns_are_dropped_and_the_system_prompt_kept()
    {
        var old = new string('x', 30);
        DialogueMessage[] chat = [S("sys"), U(old), A(old), U(old), A(old), U("latest question")];
        // Budget: 120 - 20 = 100 tokens. sys=6, each old=33, latest=18: the last two old messages fit (90), four do not (156).
        var fit = ContextWindowFitter.Fit(chat, contextLength: 120, requestedMaxNewTokens: 20, Count);
        Assert.Equal([S("sys"), U(old), A(old), U("latest question")], fit.Messages);
        Assert.Equal(2, fit.DroppedMessages);
        Assert.True(fit.PromptTokens <= 100);
    }

    [Fact]
    public void Kept_history_always_starts_at_a_user_message()
    {
        DialogueMessage[] chat = [U(new string('a', 30)), A(new string('b', 5)), U("q")];
        // Dropping only the first user message would leave an assistant message first: drop both instead.
        var fit = ContextWindowFitter.Fit(chat, contextLength: 40, requestedMaxNewTokens: 10, Count);
        Assert.Equal([U("q")], fit.Messages);
        Assert.Equal(2, fit.DroppedMessages);
    }

    [Fact]
    public void Without_a_requested_maximum_the_reply_gets_the_rest_of_the_window_up_to_the_default()
    {
        DialogueMessage[] chat = [U("hello")];
        var small = ContextWindowFitter.Fit(chat, contextLength: 100, requestedMaxNewTokens: 0, Count);
        Assert.Equal(100 - 8, small.MaxNewTokens);
        var large = ContextWindowFitter.Fit(chat, contextLength: 8192, requestedMaxNewTokens: 0, Count);
        Assert.Equal(ContextWindowFitter.DefaultMaxNewTokens, large.MaxNewTokens);
    }

    [Fact]
    public void A_last_message_too_long_for_the_window_is_refused_with_the_numbers()
    {
        DialogueMessage[] chat = [S("sys"), U(new string('z', 500))];
        var error = Assert.Throws<ContextWindowExceededException>(() => ContextWindowFitter.Fit(chat, 256, 16, Count));
        Assert.Contains("256", error.Message);
        Assert.Contains("509", error.Message);
    }

    [Fact]
    public void Max_tokens_not_below_the_context_length_is_refused()
    {
        Assert.Throws<ContextWindowExceededException>(() => ContextWindowFitter.Fit([U("q")], 128, 128, Count));
    }

    [Fact]
    public void The_prompt_is_measured_a_logarithmic_number_of_times()
    {
        var chat = new List<DialogueMessage>();
        for (var i = 0; i < 500; i++) { chat.Add(U("question " + i)); chat.Add(A("answer " + i)); }
        chat.Add(U("final"));
        var calls = 0;
        var fit = ContextWindowFitter.Fit(chat, 400, 100, m => { calls++; return Count(m); });
        Assert.True(calls <= 12, $"measured {calls} times");
        Assert.True(fit.PromptTokens <= 300);
        Assert.Equal(new DialogueMessage("user", "final"), fit.Messages[^1]);
    }
}
