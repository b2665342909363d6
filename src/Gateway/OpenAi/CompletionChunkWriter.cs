using System.IO.Pipelines;
using System.Text.Json;
using ChatServices.Gateway.Upstream;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.Gateway.OpenAi;

/// <summary>
/// Writes a streamed completion as OpenAI does, for both <c>chat.completion.chunk</c> and (legacy)
/// <c>text_completion</c>: one choice per chunk, each chunk carrying the id, object, created and model (and
/// <c>"usage": null</c> when usage was asked for); per choice a chunk with its finish reason; then, with
/// <c>include_usage</c>, a chunk with no choices and the usage; then <c>data: [DONE]</c>. An upstream failure
/// after the stream has started (the status line is sent) ends it with an error event, as OpenAI does. While the
/// first token is awaited, SSE comments keep the connection alive (<see cref="GatewayOptions.SseKeepAliveInterval"/>).
/// </summary>
internal sealed class CompletionChunkWriter(
    HttpResponse response, string id, string objectName, long created, string model, bool includeUsage, TimeSpan keepAliveInterval)
    : IDisposable
{
    /// <summary>Writes a delta's fields into its choice; returns whether it wrote <c>logprobs</c>.</summary>
    public delegate bool DeltaWriter(Utf8JsonWriter json, ChatDelta delta);

    private readonly ServerSentEventWriter _sse = new(response);

    /// <summary>Starts a chunk for choice <paramref name="index"/>; write the choice's own fields, then <see cref="EndChoiceAsync"/>.</summary>
    public Utf8JsonWriter BeginChoice(int index)
    {
        var json = BeginChunk();
        json.WriteStartArray("choices");
        json.WriteStartObject();
        json.WriteNumber("index", index);
        return json;
    }

    public ValueTask<FlushResult> EndChoiceAsync(Utf8JsonWriter json, string? finishReason, bool logprobsWritten, CancellationToken cancellationToken)
    {
        if (!logprobsWritten) json.WriteNull("logprobs");
        if (finishReason is null) json.WriteNull("finish_reason"); else json.WriteString("finish_reason", finishReason);
        json.WriteEndObject();
        json.WriteEndArray();
        if (includeUsage) json.WriteNull("usage");
        json.WriteEndObject();
        return _sse.EndEventAsync(cancellationToken);
    }

    /// <summary>Streams the rest of <paramref name="call"/>: its deltas and finish reasons, then usage and [DONE].</summary>
    public async Task WriteAsync(ChatCall call, int choices, DeltaWriter writeDelta, Action<Utf8JsonWriter> writeFinished, CancellationToken cancellationToken)
    {
        try
        {
            await foreach (var e in call.ReadEventsAsync(_sse, keepAliveInterval, cancellationToken))
            {
                if (e.EventCase == ChatEvent.EventOneofCase.Delta && e.Delta.ToolCalls.Count > 0)
                {
                    await WriteToolCallsAsync(call.CheckChoice(e.Delta.Index, choices), e.Delta, cancellationToken);
                }
                else if (e.EventCase == ChatEvent.EventOneofCase.Delta)
                {
                    var json = BeginChoice(call.CheckChoice(e.Delta.Index, choices));
                    var logprobsWritten = writeDelta(json, e.Delta);
                    await EndChoiceAsync(json, null, logprobsWritten, cancellationToken);
                }
                else if (e.EventCase == ChatEvent.EventOneofCase.Finished)
                {
                    var json = BeginChoice(call.CheckChoice(e.Finished.Index, choices));
                    writeFinished(json);
                    await EndChoiceAsync(json, e.Finished.FinishReason, logprobsWritten: false, cancellationToken);
                }
            }
        }
        catch (ApiException error)
        {
            await _sse.WriteErrorAsync(error, cancellationToken);
            return;
        }

        if (includeUsage)
        {
            var json = BeginChunk();
            json.WriteStartArray("choices");
            json.WriteEndArray();
            WriteUsage(json, call.UsageBody());
            json.WriteEndObject();
            await _sse.EndEventAsync(cancellationToken);
        }
        await _sse.WriteDoneAsync(cancellationToken);
    }

    /// <summary>
    /// Tool calls (chat only): a call that opens in this delta (it has an id) gets the chunk that names it, then its
    /// arguments follow in a chunk of their own. Logprobs of the call's tokens are not streamed.
    /// </summary>
    private async Task WriteToolCallsAsync(int choice, ChatDelta delta, CancellationToken cancellationToken)
    {
        foreach (var toolCall in delta.ToolCalls)
        {
            if (toolCall.Id.Length > 0)
            {
                var opening = BeginChoice(choice);
                ToolMapping.WriteDeltaChunk(opening, toolCall, first: true);
                await EndChoiceAsync(opening, null, logprobsWritten: false, cancellationToken);
            }
            if (toolCall.Arguments.Length == 0) continue;
            var json = BeginChoice(choice);
            ToolMapping.WriteDeltaChunk(json, toolCall, first: false);
            await EndChoiceAsync(json, null, logprobsWritten: false, cancellationToken);
        }
    }

    public void Dispose() => _sse.Dispose();

    private Utf8JsonWriter BeginChunk()
    {
        var json = _sse.BeginEvent();
        json.WriteStartObject();
        json.WriteString("id", id);
        json.WriteString("object", objectName);
        json.WriteNumber("created", created);
        json.WriteString("model", model);
        json.WriteNull("system_fingerprint");
        return json;
    }

    private static void WriteUsage(Utf8JsonWriter json, Usage usage)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", usage.PromptTokens);
        json.WriteNumber("completion_tokens", usage.CompletionTokens);
        json.WriteNumber("total_tokens", usage.TotalTokens);
        json.WriteStartObject("prompt_tokens_details");
        json.WriteNumber("cached_tokens", usage.PromptTokensDetails.CachedTokens);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
