using System.Text;
using System.Text.Json;
using ChatServices.Gateway.Auth;
using ChatServices.Gateway.Limits;
using ChatServices.Gateway.Upstream;
using ChatServices.Protos.Chat.V1;
using Google.Protobuf;
using Microsoft.Extensions.Options;

namespace ChatServices.Gateway.OpenAi;

/// <summary><c>POST /v1/chat/completions</c>: a stateless chat turn on DialogueService, as JSON or as SSE.</summary>
public static class ChatCompletionsApi
{
    private static readonly HashSet<string> Roles = ["system", "developer", "user", "assistant", "tool"];

    public static async Task CreateChatCompletion(HttpContext http, DialogueUpstream upstream, TokenBudgets budgets, IOptions<GatewayOptions> options)
    {
        var body = await OpenAiJson.ReadBodyAsync(http.Request, OpenAiJson.Context.ChatCompletionRequest);
        var model = await upstream.RequireModelAsync(body.Model, http.RequestAborted);
        var request = ToChatRequest(body, http.GetCaller().OwnerId, options.Value.MaxMessages);
        GenerationSettingsMapping.CheckFitsContext(request.Settings, body.MaxCompletionTokens is not null ? "max_completion_tokens" : "max_tokens", model.ContextLength);
        var choices = GenerationSettingsMapping.ChoiceCount(request.Settings);

        await using var call = await StartAsync(upstream, request, budgets.Charge(http.GetCaller(), TokenEstimate.ForChat(request)), http.RequestAborted);
        var id = "chatcmpl-" + Ids.New();
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        if (body.Stream == true)
        {
            await StreamAsync(http.Response, call, id, created, model.Id, choices, body.StreamOptions?.IncludeUsage == true, options.Value.SseKeepAliveInterval, http.RequestAborted);
            return;
        }

        var completion = await CollectAsync(call, id, created, model.Id, choices, request.Settings.Logprobs);
        await OpenAiJson.WriteAsync(http.Response, completion, OpenAiJson.Context.ChatCompletion);
    }

    /// <summary>
    /// Starts the chat; a refusal DialogueService names by its own field (settings.constraint, tools[0].parameters)
    /// is renamed to the field of the OpenAI request it came from.
    /// </summary>
    private static async Task<ChatCall> StartAsync(DialogueUpstream upstream, ChatRequest request, TokenCharge charge, CancellationToken cancellationToken)
    {
        try
        {
            return await upstream.StartChatAsync(request, charge, cancellationToken);
        }
        catch (ApiException e) when (e.Param is { } param && OpenAiParam(param) is { } renamed && renamed != param)
        {
            var message = e.Message.StartsWith(param + ":", StringComparison.Ordinal) ? renamed + e.Message[param.Length..] : e.Message;
            throw ApiException.InvalidRequest(message, renamed);
        }
    }

    /// <summary>chat.v1 field names of the tools and constraint fields, as the OpenAI request spells them.</summary>
    internal static string? OpenAiParam(string dialogueParam)
    {
        if (dialogueParam.StartsWith("constraint", StringComparison.Ordinal)) return "response_format.json_schema.schema";
        if (dialogueParam.StartsWith("tool_choice", StringComparison.Ordinal)) return "tool_choice";
        if (dialogueParam.StartsWith("tools[", StringComparison.Ordinal))
        {
            var field = dialogueParam.IndexOf("].", StringComparison.Ordinal);
            return field < 0 ? dialogueParam : dialogueParam[..(field + 2)] + "function." + dialogueParam[(field + 2)..];
        }
        if (dialogueParam.StartsWith("messages[", StringComparison.Ordinal) && dialogueParam.Contains(".tool_calls[", StringComparison.Ordinal))
        {
            var field = dialogueParam.LastIndexOf("].", StringComparison.Ordinal);
            var name = dialogueParam[(field + 2)..];
            return name is "name" or "arguments" ? dialogueParam[..(field + 2)] + "function." + name : dialogueParam;
        }
        return null;
    }

    /// <summary>The OpenAI request as a stateless chat call; refuses what the contract cannot serve, naming the field.</summary>
    internal static ChatRequest ToChatRequest(ChatCompletionRequest body, string ownerId, int maxMessages)
    {
        RequestFields.Check(body.ExtraFields, RequestFields.ChatHints);
        if (body.Messages is null || body.Messages.Count == 0)
        {
            throw ApiException.InvalidRequest("'messages' is required and must hold at least one message.", "messages");
        }
        if (body.Messages.Count > maxMessages)
        {
            throw ApiException.InvalidRequest($"'messages' holds {body.Messages.Count} messages; at most {maxMessages} are allowed.", "messages", "too_many_messages");
        }
        if (body.StreamOptions is not null && body.Stream != true)
        {
            throw ApiException.InvalidRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options");
        }
        if (body.MaxTokens is not null && body.MaxCompletionTokens is not null && body.MaxTokens != body.MaxCompletionTokens)
        {
            throw ApiException.InvalidRequest("Set either 'max_tokens' or 'max_completion_tokens', not both.", "max_tokens");
        }

        var request = new ChatRequest { OwnerId = ownerId };
        for (var i = 0; i < body.Messages.Count; i++)
        {
            var message = body.Messages[i];
            if (message is null) throw ApiException.InvalidRequest($"'messages[{i}]' must be an object.", $"messages[{i}]");
            if (message.Role is null || !Roles.Contains(message.Role))
            {
                throw ApiException.InvalidRequest(
                    $"Invalid value for 'messages[{i}].role': '{message.Role}'. Supported roles: system, developer, user, assistant.", $"messages[{i}].role");
            }
            RequestFields.Check(message.ExtraFields, RequestFields.MessageHints, $"messages[{i}].");
            request.Messages.Add(ToolMapping.Message(message, i));
        }

        var maxTokensParam = body.MaxCompletionTokens is not null ? "max_completion_tokens" : "max_tokens";
        request.Settings = GenerationSettingsMapping.Build(
            body.Temperature, body.TopP, body.MaxCompletionTokens ?? body.MaxTokens, maxTokensParam, body.N, body.Stop,
            body.Seed, body.PresencePenalty, body.FrequencyPenalty, body.Logprobs == true, body.TopLogprobs);
        if (ToolMapping.Constraint(body.ResponseFormat) is { } constraint) request.Settings.Constraint = constraint;
        ToolMapping.AddTools(body, request);
        return request;
    }

    private static async Task<ChatCompletion> CollectAsync(ChatCall call, string id, long created, string model, int choices, bool logprobs)
    {
        var texts = new StringBuilder[choices];
        var finishReasons = new string[choices];
        var toolCalls = new List<ToolCallBody>?[choices];
        var tokenLogprobs = logprobs ? new List<TokenLogprobBody>[choices] : null;
        for (var i = 0; i < choices; i++)
        {
            texts[i] = new StringBuilder();
            finishReasons[i] = "stop";
            if (tokenLogprobs is not null) tokenLogprobs[i] = [];
        }

        await foreach (var e in call.ReadEventsAsync())
        {
            switch (e.EventCase)
            {
                case ChatEvent.EventOneofCase.Delta:
                    var index = call.CheckChoice(e.Delta.Index, choices);
                    texts[index].Append(e.Delta.Text);
                    ToolMapping.Collect(e.Delta.ToolCalls, ref toolCalls[index]);
                    if (tokenLogprobs is not null)
                    {
                        foreach (var lp in e.Delta.Logprobs) tokenLogprobs[index].Add(ToBody(lp));
                    }
                    break;
                case ChatEvent.EventOneofCase.Finished:
                    finishReasons[call.CheckChoice(e.Finished.Index, choices)] = e.Finished.FinishReason;
                    break;
            }
        }

        var list = new List<ChatCompletionChoice>(choices);
        for (var i = 0; i < choices; i++)
        {
            list.Add(new ChatCompletionChoice
            {
                Index = i,
                // A reply that only calls tools has content null, as OpenAI's.
                Message = new AssistantMessage
                {
                    Content = texts[i].Length == 0 && toolCalls[i] is not null ? null : texts[i].ToString(),
                    ToolCalls = toolCalls[i],
                },
                Logprobs = tokenLogprobs is null ? null : new ChoiceLogprobs { Content = tokenLogprobs[i] },
                FinishReason = finishReasons[i],
            });
        }
        return new ChatCompletion { Id = id, Created = created, Model = model, Choices = list, Usage = call.UsageBody() };
    }

    private static TokenLogprobBody ToBody(TextTokenLogprob lp)
    {
        var top = new List<TopLogprobBody>(lp.TopLogprobs.Count);
        foreach (var t in lp.TopLogprobs) top.Add(new TopLogprobBody { Token = t.Token, Logprob = t.Logprob, Bytes = ByteValues(t.Bytes) });
        return new TokenLogprobBody { Token = lp.Token, Logprob = lp.Logprob, Bytes = ByteValues(lp.Bytes), TopLogprobs = top };
    }

    private static int[] ByteValues(ByteString bytes)
    {
        var values = new int[bytes.Length];
        var span = bytes.Span;
        for (var i = 0; i < values.Length; i++) values[i] = span[i];
        return values;
    }

    /// <summary>
    /// The chat stream: per choice first a chunk with the assistant role and empty content, then one chunk per
    /// delta (with its logprobs when asked for), then one with the finish reason and an empty delta.
    /// </summary>
    private static async Task StreamAsync(HttpResponse response, ChatCall call, string id, long created, string model, int choices, bool includeUsage, TimeSpan keepAliveInterval, CancellationToken cancellationToken)
    {
        using var chunks = new CompletionChunkWriter(response, id, "chat.completion.chunk", created, model, includeUsage, keepAliveInterval);
        for (var i = 0; i < choices; i++)
        {
            var json = chunks.BeginChoice(i);
            json.WriteStartObject("delta");
            json.WriteString("role", "assistant");
            json.WriteString("content", "");
            json.WriteNull("refusal");
            json.WriteEndObject();
            await chunks.EndChoiceAsync(json, finishReason: null, logprobsWritten: false, cancellationToken);
        }
        await chunks.WriteAsync(call, choices, WriteDelta, static json =>
        {
            json.WriteStartObject("delta");
            json.WriteEndObject();
        }, cancellationToken);
    }

    private static bool WriteDelta(Utf8JsonWriter json, ChatDelta delta)
    {
        json.WriteStartObject("delta");
        json.WriteString("content", delta.Text);
        json.WriteEndObject();
        if (delta.Logprobs.Count == 0) return false;

        json.WriteStartObject("logprobs");
        json.WriteStartArray("content");
        foreach (var lp in delta.Logprobs)
        {
            json.WriteStartObject();
            json.WriteString("token", lp.Token);
            json.WriteNumber("logprob", lp.Logprob);
            WriteBytes(json, lp.Bytes);
            json.WriteStartArray("top_logprobs");
            foreach (var top in lp.TopLogprobs)
            {
                json.WriteStartObject();
                json.WriteString("token", top.Token);
                json.WriteNumber("logprob", top.Logprob);
                WriteBytes(json, top.Bytes);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
        return true;
    }

    private static void WriteBytes(Utf8JsonWriter json, ByteString bytes)
    {
        json.WriteStartArray("bytes");
        foreach (var b in bytes.Span) json.WriteNumberValue(b);
        json.WriteEndArray();
    }
}
