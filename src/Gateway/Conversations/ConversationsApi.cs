using ChatServices.Gateway.Auth;
using ChatServices.Gateway.Limits;
using ChatServices.Gateway.OpenAi;
using ChatServices.Gateway.Upstream;
using ChatServices.Protos.Chat.V1;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;

namespace ChatServices.Gateway.Conversations;

/// <summary>
/// The web page's API over stored conversations (<c>/api/conversations</c>). Every call acts as the caller's
/// owner id; DialogueService reports another owner's conversation as not found.
/// </summary>
public static class ConversationsApi
{
    private const int MaxTitleLength = 200;
    private const int MaxPageSize = 100;

    public static RouteGroupBuilder MapConversationsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/conversations").RequireAuthorization().RequireRateLimiting(RequestLimits.PolicyName);

        api.MapGet("/", ListConversations);
        api.MapPost("/", CreateConversation);
        api.MapGet("/{id}", GetConversation);
        api.MapPatch("/{id}", UpdateConversation);
        api.MapDelete("/{id}", DeleteConversation);
        api.MapPost("/{id}/messages", SendMessage);
        return api;
    }

    public static async Task ListConversations(
        HttpContext http, DialogueUpstream upstream, [FromQuery(Name = "page_size")] string? pageSize, [FromQuery(Name = "page_token")] string? pageToken)
    {
        // Bound as text and parsed here: the framework's binder would answer "abc" or 99999999999 in its own words.
        var size = 0;
        if (pageSize is not null && !(int.TryParse(pageSize, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out size) && size is >= 1 and <= MaxPageSize))
        {
            throw ApiException.InvalidRequest($"Invalid value for 'page_size': '{pageSize}'. It must be an integer between 1 and {MaxPageSize}.", "page_size", "invalid_value");
        }
        var page = await upstream.ListConversationsAsync(new ListConversationsRequest
        {
            OwnerId = http.GetCaller().OwnerId,
            PageSize = size,
            PageToken = pageToken ?? "",
        }, http.RequestAborted);
        var body = new ConversationPage
        {
            Conversations = page.Conversations.Select(c => ToBody(c, withMessages: false)).ToList(),
            NextPageToken = page.NextPageToken.Length == 0 ? null : page.NextPageToken,
        };
        await OpenAiJson.WriteAsync(http.Response, body, ConversationsJsonContext.Default.ConversationPage);
    }

    public static async Task CreateConversation(HttpContext http, DialogueUpstream upstream)
    {
        var body = await ReadOptionalBodyAsync(http.Request) ?? new CreateConversationBody();
        CheckTitle(body.Title, required: false);
        var conversation = await upstream.CreateConversationAsync(new CreateConversationRequest
        {
            OwnerId = http.GetCaller().OwnerId,
            Title = body.Title ?? "",
            SystemPrompt = body.SystemPrompt ?? "",
        }, http.RequestAborted);
        http.Response.Headers.Location = "/api/conversations/" + conversation.Id;
        await OpenAiJson.WriteAsync(http.Response, ToBody(conversation, withMessages: false),
            ConversationsJsonContext.Default.ConversationBody, StatusCodes.Status201Created);
    }

    public static async Task GetConversation(string id, HttpContext http, DialogueUpstream upstream)
    {
        var conversation = await upstream.GetConversationAsync(new GetConversationRequest
        {
            OwnerId = http.GetCaller().OwnerId,
            ConversationId = id,
            IncludeMessages = true,
        }, http.RequestAborted);
        await OpenAiJson.WriteAsync(http.Response, ToBody(conversation, withMessages: true), ConversationsJsonContext.Default.ConversationBody);
    }

    /// <summary>Renames the conversation and/or replaces its system prompt.</summary>
    public static async Task UpdateConversation(string id, HttpContext http, DialogueUpstream upstream)
    {
        var body = await OpenAiJson.ReadBodyAsync(http.Request, ConversationsJsonContext.Default.RenameConversationBody);
        if (body.SystemPrompt is null || body.Title is not null) CheckTitle(body.Title, required: true);
        var owner = http.GetCaller().OwnerId;
        var conversation = body.Title is null ? null : await upstream.RenameConversationAsync(
            new RenameConversationRequest { OwnerId = owner, ConversationId = id, Title = body.Title }, http.RequestAborted);
        if (body.SystemPrompt is not null)
        {
            conversation = await upstream.SetSystemPromptAsync(
                new SetSystemPromptRequest { OwnerId = owner, ConversationId = id, SystemPrompt = body.SystemPrompt }, http.RequestAborted);
        }
        await OpenAiJson.WriteAsync(http.Response, ToBody(conversation!, withMessages: false), ConversationsJsonContext.Default.ConversationBody);
    }

    public static async Task DeleteConversation(string id, HttpContext http, DialogueUpstream upstream)
    {
        await upstream.DeleteConversationAsync(new DeleteConversationRequest { OwnerId = http.GetCaller().OwnerId, ConversationId = id }, http.RequestAborted);
        http.Response.StatusCode = StatusCodes.Status204NoContent;
    }

    /// <summary>
    /// Sends a message (or regenerates or continues a reply) and streams the reply as named SSE events: <c>started</c>, <c>delta</c> ({text}),
    /// <c>finished</c> ({finish_reason, assistant_message_id}), <c>usage</c>, or <c>error</c>; then
    /// <c>data: [DONE]</c>. Closing the connection cancels the generation; what was produced is kept, marked cancelled.
    /// </summary>
    public static async Task SendMessage(string id, HttpContext http, DialogueUpstream upstream, TokenBudgets budgets, IOptions<GatewayOptions> options)
    {
        var body = await OpenAiJson.ReadBodyAsync(http.Request, ConversationsJsonContext.Default.SendMessageBody);
        var regenerate = body.Regenerate == true;
        var continueReply = body.Continue == true;
        if ((regenerate || continueReply) && !string.IsNullOrEmpty(body.Content))
        {
            throw ApiException.InvalidRequest($"'content' must be empty when '{(regenerate ? "regenerate" : "continue")}' is true.", "content");
        }
        if (regenerate && continueReply) throw ApiException.InvalidRequest("'regenerate' and 'continue' exclude each other.", "continue");
        if (continueReply && string.IsNullOrEmpty(body.ParentMessageId))
        {
            throw ApiException.InvalidRequest("'parent_message_id' must name the reply to continue.", "parent_message_id");
        }
        if (!regenerate && !continueReply && string.IsNullOrWhiteSpace(body.Content))
        {
            throw ApiException.InvalidRequest("'content' is required.", "content");
        }
        if (body.Content?.Contains('\0') == true)
        {
            // Stored messages cannot hold NUL (PostgreSQL text refuses it); refused here, naming this body's field.
            throw ApiException.InvalidRequest("'content' must not contain the character U+0000 (NUL).", "content", "invalid_value");
        }

        var request = new ChatRequest
        {
            OwnerId = http.GetCaller().OwnerId,
            ConversationId = id,
            UserMessage = body.Content ?? "",
            Regenerate = regenerate,
            ContinueReply = continueReply,
            Settings = GenerationSettingsMapping.Build(body.Temperature, body.TopP, body.MaxTokens, "max_tokens", null, null, null, null, null, false, null),
        };
        if (body.ParentMessageId is not null) request.ParentMessageId = body.ParentMessageId;
        await using var call = await upstream.StartChatAsync(request, budgets.Charge(http.GetCaller(), TokenEstimate.ForChat(request)), http.RequestAborted);
        var ct = http.RequestAborted;

        using var sse = new ServerSentEventWriter(http.Response);
        var json = sse.BeginEvent("started");
        json.WriteStartObject();
        json.WriteString("conversation_id", call.Started.ConversationId);
        json.WriteString("user_message_id", call.Started.UserMessageId);
        json.WriteString("model", call.Started.Model);
        json.WriteNumber("prompt_tokens", call.Started.PromptTokens);
        json.WriteNumber("dropped_messages", call.Started.DroppedMessages);
        json.WriteEndObject();
        await sse.EndEventAsync(ct);

        try
        {
            await foreach (var e in call.ReadEventsAsync(sse, options.Value.SseKeepAliveInterval, ct))
            {
                switch (e.EventCase)
                {
                    case ChatEvent.EventOneofCase.Delta when e.Delta.Index == 0:
                        json = sse.BeginEvent("delta");
                        json.WriteStartObject();
                        json.WriteString("text", e.Delta.Text);
                        json.WriteEndObject();
                        await sse.EndEventAsync(ct);
                        break;
                    case ChatEvent.EventOneofCase.Finished when e.Finished.Index == 0:
                        json = sse.BeginEvent("finished");
                        json.WriteStartObject();
                        json.WriteString("finish_reason", e.Finished.FinishReason);
                        json.WriteString("assistant_message_id", e.Finished.AssistantMessageId);
                        json.WriteEndObject();
                        await sse.EndEventAsync(ct);
                        break;
                    case ChatEvent.EventOneofCase.Usage:
                        json = sse.BeginEvent("usage");
                        json.WriteStartObject();
                        json.WriteNumber("prompt_tokens", e.Usage.PromptTokens);
                        json.WriteNumber("completion_tokens", e.Usage.CompletionTokens);
                        json.WriteEndObject();
                        await sse.EndEventAsync(ct);
                        break;
                }
            }
        }
        catch (ApiException error)
        {
            error.WriteTo(sse.BeginEvent("error"));
            await sse.EndEventAsync(ct);
            return;
        }
        await sse.WriteDoneAsync(ct);
    }

    private static async Task<CreateConversationBody?> ReadOptionalBodyAsync(HttpRequest request) =>
        request.ContentLength is 0 || (request.ContentLength is null && !request.Headers.TransferEncoding.Any())
            ? null
            : await OpenAiJson.ReadBodyAsync(request, ConversationsJsonContext.Default.CreateConversationBody);

    private static void CheckTitle(string? title, bool required)
    {
        if (required && string.IsNullOrWhiteSpace(title)) throw ApiException.InvalidRequest("'title' is required.", "title");
        if (title is { Length: > MaxTitleLength })
        {
            throw ApiException.InvalidRequest($"'title' is {title.Length} characters long; at most {MaxTitleLength} are allowed.", "title");
        }
    }

    private static ConversationBody ToBody(Conversation c, bool withMessages) => new()
    {
        Id = c.Id,
        Title = c.Title,
        SystemPrompt = c.SystemPrompt,
        CreatedAt = Time(c.CreatedAt),
        UpdatedAt = Time(c.UpdatedAt),
        Messages = withMessages ? c.Messages.Select(ToBody).ToList() : null,
    };

    private static MessageBody ToBody(Message m) => new()
    {
        Id = m.Id,
        Role = m.Role,
        Content = m.HasContent || m.ToolCalls.Count == 0 ? m.Content : null,
        ToolCalls = m.ToolCalls.Count == 0 ? null : m.ToolCalls.Select(c => new MessageToolCall { Id = c.Id, Name = c.Name, Arguments = c.Arguments }).ToList(),
        ToolCallId = m.ToolCallId.Length == 0 ? null : m.ToolCallId,
        Status = m.Status switch
        {
            MessageStatus.Cancelled => "cancelled",
            MessageStatus.Failed => "failed",
            _ => "complete",
        },
        FinishReason = m.FinishReason,
        CreatedAt = Time(m.CreatedAt),
        ParentId = m.ParentId.Length == 0 ? null : m.ParentId,
        Usage = m.PromptTokens == 0 && m.CompletionTokens == 0
            ? null
            : new MessageUsage { PromptTokens = m.PromptTokens, CompletionTokens = m.CompletionTokens },
    };

    private static DateTimeOffset? Time(Timestamp? t) => t is null ? null : t.ToDateTimeOffset();
}
