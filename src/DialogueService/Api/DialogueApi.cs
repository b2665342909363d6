using System.Data.Common;
using ChatServices.DialogueService.Chat;
using ChatServices.DialogueService.Conversations;
using ChatServices.DialogueService.Identity;
using ChatServices.DialogueService.Model;
using ChatServices.ServiceDefaults.Identity;
using Grpc.Core;
using Microsoft.AspNetCore.Authorization;
using ChatServices.Protos.Chat.V1;
using Google.Protobuf.WellKnownTypes;
using ProtoConversation = ChatServices.Protos.Chat.V1.Conversation;
using ProtoMessage = ChatServices.Protos.Chat.V1.Message;
using ProtoMessageStatus = ChatServices.Protos.Chat.V1.MessageStatus;
using StoreMessageStatus = ChatServices.DialogueService.Conversations.MessageStatus;

namespace ChatServices.DialogueService.Api;

/// <summary>
/// chat.v1.Dialogue: conversations (kept by <see cref="IConversationStore"/>) and chat (run by <see cref="ChatPipeline"/>).
/// Every call works on the authenticated caller's conversations (<see cref="Owners"/>): <c>owner_id</c> may name
/// another owner only for a <c>service</c> caller. A chat counts against its key's limits (<see cref="KeyLimits"/>).
/// </summary>
[Authorize(Policy = ServiceIdentity.ChatPolicy)]
public sealed class DialogueApi(IConversationStore store, ChatPipeline chat, ServedModel model, KeyLimits limits) : Dialogue.DialogueBase
{
    public override Task<ProtoConversation> CreateConversation(CreateConversationRequest request, ServerCallContext context) =>
        Run(async ct => ToProto(await store.CreateAsync(Owners.Resolve(context, request.OwnerId), Blank(request.Title), Blank(request.SystemPrompt), cancellationToken: ct)),
            context);

    public override Task<ListConversationsResponse> ListConversations(ListConversationsRequest request, ServerCallContext context) =>
        Run(async ct =>
        {
            var page = await store.ListAsync(Owners.Resolve(context, request.OwnerId), request.PageSize == 0 ? 20 : request.PageSize, Blank(request.PageToken), ct);
            var response = new ListConversationsResponse { NextPageToken = page.NextPageToken ?? "" };
            foreach (var c in page.Conversations) response.Conversations.Add(ToProto(c));
            return response;
        }, context);

    public override Task<ProtoConversation> GetConversation(GetConversationRequest request, ServerCallContext context) =>
        Run(async ct =>
        {
            var detail = await store.GetAsync(Owners.Resolve(context, request.OwnerId), ParseId(request.ConversationId), request.IncludeMessages, ct);
            var conversation = ToProto(detail.Conversation);
            foreach (var m in detail.Messages) conversation.Messages.Add(ToProto(m));
            return conversation;
        }, context);

    public override Task<ProtoConversation> RenameConversation(RenameConversationRequest request, ServerCallContext context) =>
        Run(async ct => ToProto(await store.RenameAsync(Owners.Resolve(context, request.OwnerId), ParseId(request.ConversationId), request.Title, ct)), context);

    public override Task<ProtoConversation> SetSystemPrompt(SetSystemPromptRequest request, ServerCallContext context) =>
        Run(async ct => ToProto(await store.SetSystemPromptAsync(Owners.Resolve(context, request.OwnerId), ParseId(request.ConversationId), Blank(request.SystemPrompt), ct)), context);

    public override Task<DeleteConversationResponse> DeleteConversation(DeleteConversationRequest request, ServerCallContext context) =>
        Run(async ct =>
        {
            await store.DeleteAsync(Owners.Resolve(context, request.OwnerId), ParseId(request.ConversationId), ct);
            return new DeleteConversationResponse();
        }, context);

    public override Task<ProtoMessage> AppendMessage(AppendMessageRequest request, ServerCallContext context) =>
        Run(async ct =>
        {
            if (request.Message is null) throw ApiErrors.InvalidArgument("message", "message is required.");
            var role = request.Message.Role switch
            {
                "system" => MessageRole.System,
                "user" => MessageRole.User,
                "assistant" => MessageRole.Assistant,
                "tool" => MessageRole.Tool,
                var other => throw ApiErrors.InvalidArgument("message.role", $"message.role is '{other}'; expected system, user, assistant or tool."),
            };
            if (request.Message.ToolCalls.Count > 0)
                throw ApiErrors.InvalidArgument("message.tool_calls", "message.tool_calls: tool calls are stored with the replies that make them, not appended.");
            if ((role == MessageRole.Tool) != (request.Message.ToolCallId.Length > 0))
                throw ApiErrors.InvalidArgument("message.tool_call_id", "message.tool_call_id: a tool message names the call it answers; no other message does.");
            Guid? parent = !request.HasParentMessageId ? null
                : request.ParentMessageId.Length == 0 ? Guid.Empty
                : Guid.TryParse(request.ParentMessageId, out var id) ? id
                : throw ApiErrors.InvalidArgument("parent_message_id", $"parent_message_id '{request.ParentMessageId}' is not a message id.");
            return ToProto(await store.AppendMessageAsync(Owners.Resolve(context, request.OwnerId), ParseId(request.ConversationId), role, request.Message.Content,
                parentId: parent, cancellationToken: ct, toolCallId: role == MessageRole.Tool ? request.Message.ToolCallId : null));
        }, context);

    public override Task Chat(ChatRequest request, IServerStreamWriter<ChatEvent> responseStream, ServerCallContext context) =>
        Run(async ct =>
        {
            request.OwnerId = Owners.Resolve(context, request.OwnerId);
            var meter = await limits.AdmitAsync(context, request.OwnerId, ct);
            var events = new UsageCapture(responseStream);
            await chat.RunAsync(request, events, ct);
            if (events.Usage is { } usage) await limits.RecordAsync(meter, usage.PromptTokens, usage.CompletionTokens, CancellationToken.None);
            return true;
        }, context);

    public override Task<ModelCard> GetModel(GetModelRequest request, ServerCallContext context) =>
        Task.FromResult(new ModelCard
        {
            Id = model.Id,
            ContextLength = model.ContextLength,
            Created = model.Created.ToUnixTimeSeconds(),
            OwnedBy = "chatservices",
        });

    /// <summary>Runs one call, turning the store's and the pipeline's exceptions into gRPC statuses.</summary>
    private static async Task<T> Run<T>(Func<CancellationToken, Task<T>> call, ServerCallContext context)
    {
        try
        {
            return await call(context.CancellationToken);
        }
        catch (ConversationValidationException e)
        {
            throw ApiErrors.InvalidArgument(FieldName(e.ParamName), e.Message);
        }
        catch (ConversationNotFoundException e)
        {
            throw ApiErrors.NotFound(e.Message);
        }
        catch (ConversationStateException e)
        {
            throw ApiErrors.FailedPrecondition(e.Message);
        }
        catch (DbException e) when (e.IsTransient)
        {
            // The database is restarting or unreachable: the call may succeed later or on another replica.
            throw new RpcException(new Status(StatusCode.Unavailable, "The conversation store is unavailable: " + e.Message));
        }
    }

    /// <summary>An id that is not even a UUID names no conversation: NOT_FOUND, like any unknown id.</summary>
    internal static Guid ParseId(string id) =>
        Guid.TryParse(id, out var guid) ? guid : throw ApiErrors.NotFound($"Conversation '{id}' was not found.");

    private static string? Blank(string value) => value.Length == 0 ? null : value;

    // The store names its parameters in C#; the API's fields are the proto's.
    private static string FieldName(string? parameter) => parameter switch
    {
        "ownerId" => "owner_id",
        "systemPrompt" => "system_prompt",
        "pageSize" => "page_size",
        "pageToken" => "page_token",
        "conversationId" => "conversation_id",
        "content" => "message.content",
        "role" => "message.role",
        "parentId" => "parent_message_id",
        null => "request",
        var other => other,
    };

    internal static ProtoConversation ToProto(Conversations.Conversation c) => new()
    {
        Id = c.Id.ToString(),
        Title = c.Title,
        SystemPrompt = c.SystemPrompt ?? "",
        CreatedAt = Timestamp.FromDateTimeOffset(c.CreatedAt),
        UpdatedAt = Timestamp.FromDateTimeOffset(c.UpdatedAt),
    };

    internal static ProtoMessage ToProto(ConversationMessage m)
    {
        var message = ToProtoFields(m);
        // A reply that only called tools has no content (OpenAI's content: null), which is not the same as empty text.
        if (m.Content.Length > 0 || m.ToolCalls is not { Count: > 0 }) message.Content = m.Content;
        if (m.ToolCalls is not null)
            foreach (var call in m.ToolCalls) message.ToolCalls.Add(call.ToProto());
        message.ToolCallId = m.ToolCallId ?? "";
        return message;
    }

    private static ProtoMessage ToProtoFields(ConversationMessage m) => new()
    {
        Id = m.Id.ToString(),
        Role = m.Role.ToString().ToLowerInvariant(),
        Status = m.Status switch
        {
            StoreMessageStatus.Completed => ProtoMessageStatus.Complete,
            StoreMessageStatus.Cancelled => ProtoMessageStatus.Cancelled,
            StoreMessageStatus.Failed => ProtoMessageStatus.Failed,
            _ => ProtoMessageStatus.Unspecified,
        },
        FinishReason = m.FinishReason ?? "",
        CreatedAt = Timestamp.FromDateTimeOffset(m.CreatedAt),
        Sequence = m.Sequence,
        ParentId = m.ParentId?.ToString() ?? "",
        PromptTokens = m.Usage?.PromptTokens ?? 0,
        CompletionTokens = m.Usage?.CompletionTokens ?? 0,
        Error = m.Error ?? "",
    };
}
