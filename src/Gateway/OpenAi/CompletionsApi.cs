using System.Text;
using ChatServices.Gateway.Auth;
using ChatServices.Gateway.Limits;
using ChatServices.Gateway.Upstream;
using ChatServices.Protos.Chat.V1;
using Microsoft.Extensions.Options;

namespace ChatServices.Gateway.OpenAi;

/// <summary>
/// <c>POST /v1/completions</c>, the legacy text completion API: a stateless chat call with a raw
/// <c>prompt</c> (no chat template), answered as <c>text_completion</c> JSON or SSE.
/// </summary>
public static class CompletionsApi
{
    public static async Task CreateCompletion(HttpContext http, DialogueUpstream upstream, TokenBudgets budgets, IOptions<GatewayOptions> options)
    {
        var body = await OpenAiJson.ReadBodyAsync(http.Request, OpenAiJson.Context.CompletionRequest);
        var model = await upstream.RequireModelAsync(body.Model, http.RequestAborted);
        var request = ToChatRequest(body, http.GetCaller().OwnerId);
        GenerationSettingsMapping.CheckFitsContext(request.Settings, "max_tokens", model.ContextLength);
        var choices = GenerationSettingsMapping.ChoiceCount(request.Settings);

        await using var call = await upstream.StartChatAsync(request, budgets.Charge(http.GetCaller(), TokenEstimate.ForChat(request)), http.RequestAborted);
        var id = "cmpl-" + Ids.New();
        var created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        if (body.Stream == true)
        {
            await StreamAsync(http.Response, call, id, created, model.Id, choices, body.StreamOptions?.IncludeUsage == true, options.Value.SseKeepAliveInterval, http.RequestAborted);
            return;
        }

        var texts = new StringBuilder[choices];
        var finishReasons = new string[choices];
        for (var i = 0; i < choices; i++) (texts[i], finishReasons[i]) = (new StringBuilder(), "stop");
        await foreach (var e in call.ReadEventsAsync())
        {
            if (e.EventCase == ChatEvent.EventOneofCase.Delta) texts[call.CheckChoice(e.Delta.Index, choices)].Append(e.Delta.Text);
            else if (e.EventCase == ChatEvent.EventOneofCase.Finished) finishReasons[call.CheckChoice(e.Finished.Index, choices)] = e.Finished.FinishReason;
        }
        var list = new List<TextCompletionChoice>(choices);
        for (var i = 0; i < choices; i++) list.Add(new TextCompletionChoice { Index = i, Text = texts[i].ToString(), FinishReason = finishReasons[i] });
        await OpenAiJson.WriteAsync(http.Response,
            new TextCompletion { Id = id, Created = created, Model = model.Id, Choices = list, Usage = call.UsageBody() },
            OpenAiJson.Context.TextCompletion);
    }

    internal static ChatRequest ToChatRequest(CompletionRequest body, string ownerId)
    {
        RequestFields.Check(body.ExtraFields, RequestFields.NoHints);
        if (body.Prompt is null) throw ApiException.InvalidRequest("'prompt' is required.", "prompt");
        if (body.StreamOptions is not null && body.Stream != true)
        {
            throw ApiException.InvalidRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options");
        }
        if (body.Echo == true) throw ApiException.InvalidRequest("'echo' is not supported.", "echo");
        if (!string.IsNullOrEmpty(body.Suffix)) throw ApiException.InvalidRequest("'suffix' is not supported.", "suffix");
        if (body.BestOf is { } bestOf && bestOf != (body.N ?? 1)) throw ApiException.InvalidRequest("'best_of' other than 'n' is not supported.", "best_of");
        if (body.Logprobs is > 0) throw ApiException.InvalidRequest("'logprobs' is not supported on /v1/completions; use /v1/chat/completions.", "logprobs");

        return new ChatRequest
        {
            OwnerId = ownerId,
            Prompt = body.Prompt,
            // The legacy API's default is 16 tokens, unlike chat's "as many as fit".
            Settings = GenerationSettingsMapping.Build(body.Temperature, body.TopP, body.MaxTokens ?? 16, "max_tokens", body.N, body.Stop,
                body.Seed, body.PresencePenalty, body.FrequencyPenalty, logprobs: false, topLogprobs: null),
        };
    }

    private static async Task StreamAsync(HttpResponse response, ChatCall call, string id, long created, string model, int choices, bool includeUsage, TimeSpan keepAliveInterval, CancellationToken cancellationToken)
    {
        using var chunks = new CompletionChunkWriter(response, id, "text_completion", created, model, includeUsage, keepAliveInterval);
        await response.StartAsync(cancellationToken);
        await chunks.WriteAsync(call, choices,
            static (json, delta) =>
            {
                json.WriteString("text", delta.Text);
                return false;
            },
            static json => json.WriteString("text", ""),
            cancellationToken);
    }
}
