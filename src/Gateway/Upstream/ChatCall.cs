using System.Runtime.CompilerServices;
using ChatServices.Gateway.Limits;
using ChatServices.Gateway.OpenAi;
using ChatServices.Protos.Chat.V1;
using Usage = ChatServices.Gateway.OpenAi.Usage;

namespace ChatServices.Gateway.Upstream;

/// <summary>
/// One running <c>Dialogue.Chat</c> stream whose first event (<see cref="ChatStarted"/>) has arrived, so the call
/// is known to have been accepted: an endpoint answers an HTTP error for anything that fails before this, and
/// reports failures after it inside the stream. Disposing it ends the upstream call (cancelling it if it is
/// still generating) and settles the caller's token charge with the usage, or with what was seen.
/// </summary>
public sealed class ChatCall : IAsyncDisposable
{
    private readonly IAsyncEnumerator<ChatEvent> _events;
    private readonly TokenCharge _charge;
    private int _deltas;

    internal ChatCall(IAsyncEnumerator<ChatEvent> events, ChatStarted started, TokenCharge charge)
    {
        _events = events;
        Started = started;
        _charge = charge;
    }

    public ChatStarted Started { get; }

    /// <summary>Set once the stream's <see cref="ChatUsage"/> event has been read.</summary>
    public ChatUsage? Usage { get; private set; }

    /// <summary>
    /// The events after <see cref="Started"/>; upstream failures surface as <see cref="ApiException"/>. The call
    /// was started with the request's cancellation token, which also ends this enumeration.
    /// </summary>
    /// <param name="keepAlive">For a stream: until the first delta arrives (the request is queued, or its prompt is
    /// prefilled), an SSE comment is sent every <paramref name="keepAliveInterval"/> of silence.</param>
    public async IAsyncEnumerable<ChatEvent> ReadEventsAsync(
        ServerSentEventWriter? keepAlive = null, TimeSpan keepAliveInterval = default, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (await (keepAlive is not null && keepAliveInterval > TimeSpan.Zero && _deltas == 0
                   ? MoveNextKeepingAliveAsync(keepAlive, keepAliveInterval, cancellationToken)
                   : _events.MoveNextAsync()))
        {
            var e = _events.Current;
            if (e.EventCase == ChatEvent.EventOneofCase.Delta) _deltas++;
            else if (e.EventCase == ChatEvent.EventOneofCase.Usage)
            {
                Usage = e.Usage;
                _charge.Settle(e.Usage.PromptTokens + e.Usage.CompletionTokens);
            }
            yield return e;
        }
    }

    private async ValueTask<bool> MoveNextKeepingAliveAsync(ServerSentEventWriter sse, TimeSpan interval, CancellationToken cancellationToken)
    {
        var next = _events.MoveNextAsync().AsTask();
        while (true)
        {
            try
            {
                return await next.WaitAsync(interval, cancellationToken);
            }
            catch (TimeoutException)
            {
                await sse.WriteKeepAliveAsync(cancellationToken);
            }
        }
    }

    /// <summary>A choice index from upstream, checked against what was asked for.</summary>
    public int CheckChoice(int index, int choices) =>
        (uint)index < (uint)choices
            ? index
            : throw new ApiException(StatusCodes.Status502BadGateway, "server_error", $"DialogueService sent choice {index} of {choices}.");

    /// <summary>The usage in OpenAI's shape (zeros where the stream ended without reporting it).</summary>
    public Usage UsageBody() => new()
    {
        PromptTokens = Usage?.PromptTokens ?? Started.PromptTokens,
        CompletionTokens = Usage?.CompletionTokens ?? 0,
        PromptTokensDetails = new PromptTokensDetails { CachedTokens = Usage?.CachedPromptTokens ?? 0 },
    };

    public async ValueTask DisposeAsync()
    {
        if (Usage is null)
        {
            // Cancelled or failed before usage: charge the prompt and at least a token per delta seen.
            _charge.Settle(Started.PromptTokens + _deltas);
        }
        _charge.Dispose();
        await _events.DisposeAsync();
    }
}
