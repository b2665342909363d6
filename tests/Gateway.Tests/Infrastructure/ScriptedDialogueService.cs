using System.Collections.Concurrent;
using System.Text;
using Grpc.Core;
using ChatServices.Protos.Chat.V1;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ChatServices.Gateway.Tests.Infrastructure;

/// <summary>
/// A scripted chat.v1.Dialogue served over real gRPC (grpc-dotnet): the upstream the Gateway is tested against. It
/// keeps conversations in memory per owner, answers every chat with a known reply streamed word by word, records
/// each request and whether its cancellation token fired, and misbehaves on cue — the last user text picks the
/// script:
/// <list type="bullet">
/// <item>"slow …": 400 words, 40 ms apart (for stop and disconnect);</item>
/// <item>"queued …": the echo, after 1.5 s without a token (for SSE keep-alive);</item>
/// <item>"fail:unavailable", "fail:invalid", "fail:exhausted", "fail:notfound": that gRPC status before starting;</item>
/// <item>"fail:midstream": three words, then INTERNAL.</item>
/// <item>"fixture:NAME": the text of WebPage/fixtures/NAME.md, in pieces of 1, 2, 3, 5, 7, 11 and 13 characters (so
/// that pieces end inside tags, attributes, entities and Markdown syntax); "fixture-slow:NAME" the same, 10 ms apart
/// (so that a page renders it over many frames).</item>
/// </list>
/// Anything else: "Hello! You said: {text}" (choice i &gt; 0 prefixed "[i] "), cut at max_tokens words.
/// Stored conversations branch as DialogueService's do: each message has a parent (parent_message_id, or the latest
/// message), a regenerated reply is added beside the earlier ones, and a continued reply goes on with the rest of the
/// known reply, stored beside the one it continues.
/// </summary>
public sealed class ScriptedDialogueService : Dialogue.DialogueBase
{
    public const string ModelId = "test-model";
    public const int SlowWords = 400;
    public static readonly TimeSpan QueuedDelay = TimeSpan.FromSeconds(1.5);

    private readonly ConcurrentDictionary<string, StoredConversation> _conversations = new();
    private long _sequence;

    /// <summary>Every Chat request received, in order.</summary>
    public ConcurrentQueue<ChatRequest> ChatRequests { get; } = new();

    /// <summary>Completed when a chat whose text starts with the key ends by cancellation (its token fired).</summary>
    public ConcurrentDictionary<string, TaskCompletionSource> Cancelled { get; } = new();

    /// <summary>Chats running now (what an inference tier would count against its capacity).</summary>
    public int Running => _running;

    private int _running;

    public TaskCompletionSource CancellationOf(string text) =>
        Cancelled.GetOrAdd(text, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

    public override Task<ModelCard> GetModel(GetModelRequest request, ServerCallContext context) =>
        Task.FromResult(new ModelCard { Id = ModelId, ContextLength = 4096, Created = 1_700_000_000, OwnedBy = "chatservices-tests" });

    public override async Task Chat(ChatRequest request, IServerStreamWriter<ChatEvent> responseStream, ServerCallContext context)
    {
        ChatRequests.Enqueue(request.Clone());
        var ct = context.CancellationToken;
        StoredConversation? conversation = null;
        Message? anchor = null;
        string text;
        if (request.ConversationId.Length > 0)
        {
            conversation = Find(request.OwnerId, request.ConversationId);
            anchor = conversation.Anchor(request);
            if (request.Regenerate || request.ContinueReply)
            {
                text = anchor?.Content ?? "";
            }
            else
            {
                if (request.UserMessage.Length == 0) throw new RpcException(new Status(StatusCode.InvalidArgument, "user_message: required"));
                text = request.UserMessage;
            }
        }
        else if (request.Prompt.Length > 0)
        {
            text = request.Prompt;
        }
        else
        {
            if (request.Messages.Count == 0) throw new RpcException(new Status(StatusCode.InvalidArgument, "messages: required"));
            text = request.Messages[^1].Content;
        }

        switch (text)
        {
            case "fail:unavailable": throw new RpcException(new Status(StatusCode.Unavailable, "no inference replica"));
            case "fail:invalid": throw new RpcException(new Status(StatusCode.InvalidArgument, "settings.temperature: must be at most 2"));
            case "fail:exhausted": throw new RpcException(new Status(StatusCode.ResourceExhausted, "the inference tier is at capacity"));
            case "fail:notfound": throw new RpcException(new Status(StatusCode.NotFound, "conversation not found"));
            // As DialogueService names a constraint the inference tier refused: by the request field it came from.
            case "fail:constraint":
                throw new RpcException(new Status(StatusCode.InvalidArgument, "settings.constraint: constraint.json_schema: keyword 'patternProperties' is not supported."));
            case "fail:tool-schema":
                throw new RpcException(new Status(StatusCode.InvalidArgument, "tools[0].parameters: constraint.grammar.json_schema_rules[fn-0]: keyword 'patternProperties' is not supported."));
        }

        // A forced tool call: the reply is a call of the named function (or the first), made in two deltas.
        if (request.ToolChoice?.Mode is ToolChoice.Types.Mode.Required or ToolChoice.Types.Mode.Function)
        {
            await responseStream.WriteAsync(new ChatEvent { Started = new ChatStarted { PromptTokens = 5, Model = ModelId } });
            var name = request.ToolChoice.FunctionName.Length > 0 ? request.ToolChoice.FunctionName : request.Tools[0].Name;
            var opening = new ChatDelta();
            opening.ToolCalls.Add(new ToolCallDelta { Index = 0, Id = "call_abcdefghijklmnopqrstuvwx", Name = name, Arguments = "{\"city\":" });
            await responseStream.WriteAsync(new ChatEvent { Delta = opening });
            var rest = new ChatDelta();
            rest.ToolCalls.Add(new ToolCallDelta { Index = 0, Arguments = "\"Oslo\"}" });
            await responseStream.WriteAsync(new ChatEvent { Delta = rest });
            await responseStream.WriteAsync(new ChatEvent { Finished = new ChatFinished { FinishReason = "tool_calls" } });
            await responseStream.WriteAsync(new ChatEvent { Usage = new ChatUsage { PromptTokens = 5, CompletionTokens = 9 } });
            return;
        }

        Message? userMessage = null;
        if (conversation is not null && !request.Regenerate && !request.ContinueReply)
        {
            userMessage = conversation.Add("user", text, MessageStatus.Complete, "", anchor?.Id ?? "", ref _sequence);
            if (conversation.Title == "New chat") conversation.Title = text.Length > 40 ? text[..40] : text;
        }

        var promptTokens = PromptTokens(request, conversation);
        await responseStream.WriteAsync(new ChatEvent
        {
            Started = new ChatStarted
            {
                ConversationId = request.ConversationId,
                UserMessageId = userMessage?.Id ?? "",
                PromptTokens = promptTokens,
                Model = ModelId,
            },
        });

        // Waits before its first token, as a request queued for the engine or with a long prompt to prefill does.
        if (text.StartsWith("queued", StringComparison.Ordinal)) await Task.Delay(QueuedDelay, ct);
        var slow = text.StartsWith("slow", StringComparison.Ordinal);
        // A continued reply goes on with the rest of the reply to the question it answers.
        var continued = request.ContinueReply ? text : "";
        if (request.ContinueReply) text = conversation!.Messages.Single(m => m.Id == anchor!.ParentId).Content;
        var words = slow ? Enumerable.Range(0, SlowWords).Select(i => $"word{i} ").ToArray()
            : text.StartsWith("fixture", StringComparison.Ordinal) ? AwkwardPieces(Fixture(text[(text.IndexOf(':') + 1)..]))
            : Words(("Hello! You said: " + text)[continued.Length..]);
        var replyParent = request.ContinueReply ? anchor!.ParentId : userMessage?.Id ?? anchor?.Id ?? "";
        var choices = request.Settings?.N is > 0 ? request.Settings.N : 1;
        var maxTokens = request.Settings?.MaxTokens ?? 0;
        var produced = new StringBuilder(continued);
        var completionTokens = 0;
        Interlocked.Increment(ref _running);
        try
        {
            for (var choice = 0; choice < choices; choice++)
            {
                var choiceWords = choice == 0 ? words : [$"[{choice}] ", .. words];
                var limit = maxTokens > 0 ? Math.Min(maxTokens, choiceWords.Length) : choiceWords.Length;
                for (var i = 0; i < limit; i++)
                {
                    if (slow) await Task.Delay(40, ct);
                    else if (text.StartsWith("fixture-slow:", StringComparison.Ordinal)) await Task.Delay(10, ct);
                    if (text == "fail:midstream" && i == 3) throw new RpcException(new Status(StatusCode.Internal, "the model runner failed"));
                    ct.ThrowIfCancellationRequested();
                    var delta = new ChatDelta { Index = choice, Text = choiceWords[i] };
                    if (request.Settings?.Logprobs == true) delta.Logprobs.Add(Logprob(choiceWords[i], request.Settings.TopLogprobs));
                    await responseStream.WriteAsync(new ChatEvent { Delta = delta });
                    if (choice == 0) produced.Append(choiceWords[i]);
                    completionTokens++;
                }
                var reason = limit < choiceWords.Length ? "length" : "stop";
                var assistant = choice == 0 ? conversation?.Add("assistant", produced.ToString(), MessageStatus.Complete, reason, replyParent, ref _sequence) : null;
                if (assistant is not null) (assistant.PromptTokens, assistant.CompletionTokens) = (promptTokens, limit);
                await responseStream.WriteAsync(new ChatEvent { Finished = new ChatFinished { Index = choice, FinishReason = reason, AssistantMessageId = assistant?.Id ?? "" } });
            }
            await responseStream.WriteAsync(new ChatEvent
            {
                Usage = new ChatUsage { PromptTokens = promptTokens, CompletionTokens = completionTokens, CachedPromptTokens = 2 },
            });
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            conversation?.Add("assistant", produced.ToString(), MessageStatus.Cancelled, "cancelled", replyParent, ref _sequence);
            CancellationOf(text).TrySetResult();
            throw;
        }
        catch (RpcException)
        {
            // As DialogueService does: the failed reply is stored with what it produced, marked failed.
            conversation?.Add("assistant", produced.ToString(), MessageStatus.Failed, "", replyParent, ref _sequence);
            throw;
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    public override Task<Conversation> CreateConversation(CreateConversationRequest request, ServerCallContext context)
    {
        var c = new StoredConversation(request.OwnerId, Guid.NewGuid().ToString("N"), request.Title.Length > 0 ? request.Title : "New chat", request.SystemPrompt);
        _conversations[c.Id] = c;
        return Task.FromResult(c.ToProto(includeMessages: false));
    }

    /// <summary>Every ListConversations request received, in order.</summary>
    public ConcurrentQueue<ListConversationsRequest> ListRequests { get; } = new();

    public override Task<ListConversationsResponse> ListConversations(ListConversationsRequest request, ServerCallContext context)
    {
        ListRequests.Enqueue(request.Clone());
        var response = new ListConversationsResponse();
        response.Conversations.AddRange(_conversations.Values.Where(c => c.OwnerId == request.OwnerId)
            .OrderByDescending(c => c.UpdatedAt).Select(c => c.ToProto(includeMessages: false)));
        return Task.FromResult(response);
    }

    public override Task<Conversation> GetConversation(GetConversationRequest request, ServerCallContext context) =>
        Task.FromResult(Find(request.OwnerId, request.ConversationId).ToProto(request.IncludeMessages));

    public override Task<Conversation> RenameConversation(RenameConversationRequest request, ServerCallContext context)
    {
        var c = Find(request.OwnerId, request.ConversationId);
        c.Title = request.Title;
        c.UpdatedAt = DateTimeOffset.UtcNow;
        return Task.FromResult(c.ToProto(includeMessages: false));
    }

    public override Task<Conversation> SetSystemPrompt(SetSystemPromptRequest request, ServerCallContext context)
    {
        var c = Find(request.OwnerId, request.ConversationId);
        c.SystemPrompt = request.SystemPrompt;
        c.UpdatedAt = DateTimeOffset.UtcNow;
        return Task.FromResult(c.ToProto(includeMessages: false));
    }

    public override Task<DeleteConversationResponse> DeleteConversation(DeleteConversationRequest request, ServerCallContext context)
    {
        _conversations.TryRemove(Find(request.OwnerId, request.ConversationId).Id, out _);
        return Task.FromResult(new DeleteConversationResponse());
    }

    private StoredConversation Find(string ownerId, string id) =>
        _conversations.TryGetValue(id, out var c) && c.OwnerId == ownerId
            ? c
            : throw new RpcException(new Status(StatusCode.NotFound, $"conversation '{id}' not found"));

    private static int PromptTokens(ChatRequest request, StoredConversation? conversation)
    {
        var chars = request.Prompt.Length + request.UserMessage.Length + request.Messages.Sum(m => m.Content.Length + 4);
        if (conversation is not null) lock (conversation) chars += conversation.Messages.Sum(m => m.Content.Length + 4);
        return 3 + chars / 4;
    }

    private static string Fixture(string name) =>
        File.ReadAllText(Path.Combine(RepositoryRoot.Path, "tests", "Gateway.Tests", "WebPage", "fixtures", name + ".md"));

    private static string[] AwkwardPieces(string text)
    {
        int[] sizes = [1, 2, 3, 5, 7, 11, 13];
        var pieces = new List<string>();
        for (int at = 0, i = 0; at < text.Length; i++)
        {
            var size = Math.Min(sizes[i % sizes.Length], text.Length - at);
            pieces.Add(text.Substring(at, size));
            at += size;
        }
        return [.. pieces];
    }

    private static string[] Words(string text)
    {
        var words = text.Split(' ');
        for (var i = 0; i < words.Length - 1; i++) words[i] += " ";
        return words;
    }

    private static TextTokenLogprob Logprob(string token, int top)
    {
        var lp = new TextTokenLogprob { Token = token, Logprob = -0.25f, Bytes = ByteString.CopyFromUtf8(token) };
        for (var i = 0; i < top; i++)
        {
            lp.TopLogprobs.Add(new TextTopLogprob { Token = i == 0 ? token : $"alt{i}", Logprob = -0.25f - i, Bytes = ByteString.CopyFromUtf8(i == 0 ? token : $"alt{i}") });
        }
        return lp;
    }

    private sealed class StoredConversation(string ownerId, string id, string title, string systemPrompt)
    {
        public string OwnerId { get; } = ownerId;
        public string Id { get; } = id;
        public string Title { get; set; } = title;
        public string SystemPrompt { get; set; } = systemPrompt;
        public DateTimeOffset CreatedAt { get; } = DateTimeOffset.UtcNow;
        public DateTimeOffset UpdatedAt { get; set; } = DateTimeOffset.UtcNow;
        public List<Message> Messages { get; } = [];

        public Message Add(string role, string content, MessageStatus status, string finishReason, string parentId, ref long sequence)
        {
            var message = new Message
            {
                Id = Guid.NewGuid().ToString("N"), Role = role, Content = content, Status = status, FinishReason = finishReason,
                CreatedAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow), Sequence = Interlocked.Increment(ref sequence),
                ParentId = parentId,
            };
            lock (this) Messages.Add(message);
            UpdatedAt = DateTimeOffset.UtcNow;
            return message;
        }

        /// <summary>
        /// Where a turn attaches, as DialogueService decides it: the message a new one follows (null: none), or with
        /// regenerate the user message answered again.
        /// </summary>
        public Message? Anchor(ChatRequest request)
        {
            lock (this)
            {
                Message? anchor = !request.HasParentMessageId ? Messages.LastOrDefault()
                    : request.ParentMessageId.Length == 0 && !request.Regenerate ? null
                    : Messages.FirstOrDefault(m => m.Id == request.ParentMessageId)
                      ?? throw new RpcException(new Status(StatusCode.InvalidArgument, $"parent_message_id: '{request.ParentMessageId}' is not a message of this conversation."));
                if (request.ContinueReply)
                    return anchor?.Role == "assistant" ? anchor : throw new RpcException(new Status(StatusCode.InvalidArgument, "continue_reply: not a reply."));
                if (!request.Regenerate) return anchor;
                if (anchor?.Role == "assistant") anchor = Messages.FirstOrDefault(m => m.Id == anchor.ParentId);
                return anchor?.Role == "user" ? anchor : throw new RpcException(new Status(StatusCode.InvalidArgument, "regenerate: there is no user message to answer there."));
            }
        }

        public Conversation ToProto(bool includeMessages)
        {
            var c = new Conversation
            {
                Id = Id, Title = Title, SystemPrompt = SystemPrompt,
                CreatedAt = Timestamp.FromDateTimeOffset(CreatedAt), UpdatedAt = Timestamp.FromDateTimeOffset(UpdatedAt),
            };
            if (includeMessages) lock (this) c.Messages.AddRange(Messages);
            return c;
        }
    }
}
