using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Text;
using ChatServices.DialogueService.Conversations;
using ChatServices.DialogueService.Model;
using ChatServices.DialogueService.PostProcessing;
using ChatServices.DialogueService.Templates;
using ChatServices.DialogueService.Tokenization;
using ChatServices.DialogueService.Tools;
using Grpc.Core;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Microsoft.Extensions.Options;
using StoreMessageStatus = ChatServices.DialogueService.Conversations.MessageStatus;
using TemplateMessage = ChatServices.DialogueService.Templates.ChatMessage;

namespace ChatServices.DialogueService.Chat;

/// <summary>
/// One chat turn, from request to streamed reply: gathers the messages (a stored conversation's history, or the
/// request's own), fits them into the context window, renders and tokenizes the prompt, generates through
/// <see cref="IGenerationBackend"/>, and turns token ids back into text: streaming detokenization, then stop
/// strings, per choice.
/// </summary>
/// <remarks>
/// Durability (stored conversations): nothing is written until the prompt is known to fit; then the user message
/// is committed before generation starts, and the reply is written once when generation ends — completed, or
/// cancelled / failed with what was produced — with a token the client's disconnect does not cancel.
/// Message text is never logged unless Telemetry:LogContent is set.
/// </remarks>
public sealed class ChatPipeline(
    ServedModel model,
    IConversationStore store,
    IGenerationBackend backend,
    IOptions<ContentLoggingOptions> contentLogging,
    ILogger<ChatPipeline> logger,
    DrainDeadline? drain = null)
{
    public const int MaxChoices = 8;
    public const int MaxStopStrings = 4;
    public const int MaxStopStringLength = 64;
    public const int MaxTopLogprobs = 20;
    public const int MaxMessages = 1024;

    private static readonly ActivitySource Source = new(Telemetry.SourcePrefix + "Dialogue");

    // OpenTelemetry GenAI client metrics: DialogueService is the model's client.
    private static readonly Meter Meter = new(Telemetry.SourcePrefix + "Dialogue");
    private static readonly Histogram<long> TokenUsage = Meter.CreateHistogram<long>(
        "gen_ai.client.token.usage", "{token}", "Tokens per chat turn, by gen_ai.token.type (input, output).");
    private static readonly Histogram<double> OperationDuration = Meter.CreateHistogram<double>(
        "gen_ai.client.operation.duration", "s", "Time from request to the end of the reply, per chat turn.");

    public async Task RunAsync(ChatRequest request, IServerStreamWriter<ChatEvent> output, CancellationToken cancellationToken)
    {
        using var activity = Source.StartActivity("chat");
        var started = Stopwatch.GetTimestamp();
        var parameters = ValidateSettings(request.Settings ?? new GenerationSettings(), out var stops);
        var tools = ToolSet.FromRequest(request, model.SpecialTokenStrings);
        var constraint = ConstraintFor(request, tools);
        if (parameters.MaxNewTokens >= model.ContextLength)
        {
            // Too large whatever the prompt: name the setting, not the messages the window fitter would blame.
            throw Invalid("settings.max_tokens",
                $"settings.max_tokens: {parameters.MaxNewTokens} does not fit: the model's context length is {model.ContextLength} tokens, which must hold the prompt as well as the reply.");
        }
        var turn = await GatherAsync(request, cancellationToken);

        // Fit and tokenize before anything is stored: a prompt that cannot fit is refused with nothing written.
        FittedPrompt fitted;
        int[] promptIds;
        try
        {
            if (turn.RawPrompt is not null)
            {
                promptIds = model.Tokenizer.Encode(turn.RawPrompt, addSpecialTokens: true, parseSpecialTokens: false);
                fitted = FitRaw(promptIds.Length, parameters.MaxNewTokens);
            }
            else
            {
                var continuing = turn.ContinuedText is not null;
                fitted = ContextWindowFitter.Fit(turn.Messages, model.ContextLength, parameters.MaxNewTokens,
                    messages => Tokenize(messages, continuing, tools, cancellationToken).Length);
                promptIds = Tokenize(fitted.Messages, continuing, tools, cancellationToken);
            }
        }
        catch (ContextWindowExceededException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, (turn.RawPrompt is null ? "messages: " : "prompt: ") + e.Message));
        }
        catch (TemplateException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "messages: the chat template could not render them: " + e.Message));
        }
        catch (UntrustedContentException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, e.Message));
        }
        parameters = parameters with { MaxNewTokens = fitted.MaxNewTokens };
        activity?.SetTag("gen_ai.request.max_tokens", parameters.MaxNewTokens);
        activity?.SetTag("gen_ai.usage.input_tokens", promptIds.Length);

        // On SIGTERM a reply may go on for the drain time; then it is stopped, failed with a status that says so.
        using var stopAtDrainEnd = drain is null ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, drain.Elapsed);
        var generation = new GenerationRequest(promptIds, parameters, model.EosTokenIds, turn.ConversationId?.ToString(), constraint);
        await using var events = backend.GenerateAsync(generation, stopAtDrainEnd?.Token ?? cancellationToken).GetAsyncEnumerator(cancellationToken);
        // A constraint the inference tier refuses (a schema feature it does not support) is refused before anything is
        // stored or started, naming the request field it came from; so the generation's first event is awaited here.
        var firstEvent = constraint is null ? null : await FirstEventAsync(events, request, tools);

        ConversationMessage? userMessage = null, reply = null;
        if (turn.ConversationId is Guid conversationId)
        {
            if (!request.Regenerate && !request.ContinueReply && request.ToolResults.Count == 0)
                userMessage = await store.AppendMessageAsync(request.OwnerId, conversationId, MessageRole.User, request.UserMessage,
                    parentId: turn.Anchor ?? Guid.Empty, cancellationToken: cancellationToken);
            var parent = userMessage?.Id ?? turn.Anchor;
            foreach (var result in request.ToolResults)
                parent = (await store.AppendMessageAsync(request.OwnerId, conversationId, MessageRole.Tool, result.Content,
                    parentId: parent ?? Guid.Empty, cancellationToken: cancellationToken, toolCallId: result.ToolCallId)).Id;
            reply = await store.BeginAssistantMessageAsync(request.OwnerId, conversationId, parent, cancellationToken);
        }

        await output.WriteAsync(new ChatEvent
        {
            Started = new ChatStarted
            {
                ConversationId = turn.ConversationId?.ToString() ?? "",
                UserMessageId = userMessage?.Id.ToString() ?? "",
                PromptTokens = promptIds.Length,
                DroppedMessages = fitted.DroppedMessages,
                Model = model.Id,
            },
        }, cancellationToken);

        var choices = new ChoiceState[parameters.N];
        // A stored reply's Finished event waits until the reply is committed: it carries the stored message's id and
        // tells the client the reply is durable, so it must never precede a commit that could still fail.
        var family = ToolPrompt.FamilyOf(model.ChatTemplate);
        for (var i = 0; i < choices.Length; i++)
            choices[i] = new ChoiceState(i, model.Tokenizer, stops, deferFinished: i == 0 && reply is not null, trim: turn.RawPrompt is null,
                turn.ContinuedText ?? "", tools is { Offered: true } ? new ToolCallParser(family) : null);
        GenerationUsage? usage = null;
        Exception? failure = null;
        var recorded = false;
        try
        {
            while (firstEvent is not null || await events.MoveNextAsync())
            {
                var e = firstEvent ?? events.Current;
                firstEvent = null;
                if (e is TokenGenerated t)
                {
                    await choices[t.Choice].OnTokenAsync(t, output, cancellationToken);
                    // Every choice has ended on a stop string: leaving the loop ends the generation upstream at once.
                    if (Array.TrueForAll(choices, c => c.Finished)) break;
                }
                else if (e is ChoiceFinished f)
                {
                    await choices[f.Choice].FinishAsync(f.Reason == GenerationFinishReason.Length ? "length" : "stop", output, cancellationToken);
                }
                else if (e is GenerationUsage u)
                {
                    usage = u;
                }
            }
            // Ends the generation upstream at once when the loop was left early (every choice stopped).
            await events.DisposeAsync();
            foreach (var c in choices)
                if (!c.Finished) await c.FinishAsync("stop", output, cancellationToken);

            if (reply is not null)
            {
                // A commit that fails ends the call with an error (no Finished); the finally block then records the failure.
                await RecordReplyAsync(request.OwnerId, turn.ConversationId!.Value, reply.Id, choices[0], usage, promptIds.Length, null, cancellationToken);
                recorded = true;
                await choices[0].WriteDeferredFinishedAsync(reply.Id.ToString(), output, cancellationToken);
            }

            var completion = usage?.CompletionTokens ?? choices.Sum(c => c.TokenCount);
            await output.WriteAsync(new ChatEvent
            {
                Usage = new ChatUsage
                {
                    PromptTokens = promptIds.Length,
                    CompletionTokens = completion,
                    CachedPromptTokens = usage?.CachedPromptTokens ?? 0,
                },
            }, cancellationToken);
            activity?.SetTag("gen_ai.usage.output_tokens", completion);
            TagList tags = new() { { "gen_ai.operation.name", "chat" }, { "gen_ai.request.model", model.Id } };
            OperationDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, tags);
            tags.Add("gen_ai.token.type", "input");
            TokenUsage.Record(promptIds.Length, tags);
            tags[2] = new("gen_ai.token.type", "output");
            TokenUsage.Record(completion, tags);
        }
        catch (Exception e)
        {
            failure = drain is { Elapsed.IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested
                ? drain.Failure("DialogueService", "the reply")
                : e;
            activity?.SetStatus(ActivityStatusCode.Error, failure is RpcException r ? r.StatusCode.ToString() : failure.GetType().Name);
            if (failure == e) throw;
            throw failure;
        }
        finally
        {
            if (reply is not null && !recorded)
                await RecordReplyAsync(request.OwnerId, turn.ConversationId!.Value, reply.Id, choices[0], usage, promptIds.Length, failure, cancellationToken);
        }
    }

    /// <summary>
    /// The constraint sent to the inference tier: the settings' own (response_format), or with tool_choice REQUIRED or
    /// FUNCTION the call format of the model's family with the functions' schemas.
    /// </summary>
    private Constraint? ConstraintFor(ChatRequest request, ToolSet? tools)
    {
        var own = request.Settings?.Constraint;
        if (tools is not { Forced: true }) return own;
        if (own is not null) throw Invalid("settings.constraint", "a constraint cannot be combined with tool_choice REQUIRED or FUNCTION, which constrains the reply to tool calls.");
        return ToolCallGrammar.For(tools, ToolPrompt.FamilyOf(model.ChatTemplate));
    }

    /// <summary>
    /// The generation's first event. A constraint the inference tier refuses is INVALID_ARGUMENT naming the field it
    /// came from: settings.constraint, or tools[i].parameters for a forced call's schema.
    /// </summary>
    private static async Task<GenerationEvent?> FirstEventAsync(IAsyncEnumerator<GenerationEvent> events, ChatRequest request, ToolSet? tools)
    {
        try
        {
            return await events.MoveNextAsync() ? events.Current : null;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument && e.Status.Detail.StartsWith("constraint", StringComparison.Ordinal))
        {
            var field = tools is { Forced: true } ? ToolCallGrammar.FieldOf(e.Status.Detail, tools) : "settings.constraint";
            throw Invalid(field, e.Status.Detail);
        }
    }

    /// <param name="continueLast">Leave the last (assistant) message open for the model to go on with, instead of
    /// opening a new assistant turn after it.</param>
    private int[] Tokenize(IReadOnlyList<DialogueMessage> messages, bool continueLast, ToolSet? tools, CancellationToken cancellationToken)
    {
        var (templateMessages, templateTools) = ToolPrompt.Build(model.ChatTemplate, messages, tools);
        var contents = new List<string>(messages.Count);
        foreach (var m in messages) contents.Add(m.Content);
        var prompt = model.RenderPrompt(templateMessages, addGenerationPrompt: !continueLast, cancellationToken, templateTools);
        if (continueLast) prompt = OpenLastTurn(prompt, messages[^1].Content);
        return PromptEncoder.Encode(model, prompt, contents);
    }

    /// <summary>
    /// The rendered chat cut right after the text of its last message, so that the template's end of that turn is not
    /// in the prompt and the model continues the message (as Hugging Face's continue_final_message does).
    /// </summary>
    private static string OpenLastTurn(string prompt, string lastContent)
    {
        var at = prompt.LastIndexOf(lastContent, StringComparison.Ordinal);
        return at >= 0
            ? prompt[..(at + lastContent.Length)]
            : throw Invalid("continue_reply", "the chat template changes the reply's text, so the model cannot continue it.");
    }

    private async Task RecordReplyAsync(string owner, Guid conversationId, Guid replyId, ChoiceState choice,
        GenerationUsage? usage, int promptTokens, Exception? failure, CancellationToken requestToken)
    {
        var tokens = new TokenUsage(promptTokens, usage?.CompletionTokens ?? choice.TokenCount);
        var outcome = failure switch
        {
            null => new AssistantOutcome(StoreMessageStatus.Completed, choice.Content, choice.FinishReason, tokens, ToolCalls: choice.ToolCalls),
            OperationCanceledException when requestToken.IsCancellationRequested =>
                new AssistantOutcome(StoreMessageStatus.Cancelled, choice.Content, "cancelled", tokens),
            RpcException { StatusCode: StatusCode.Cancelled } =>
                new AssistantOutcome(StoreMessageStatus.Cancelled, choice.Content, "cancelled", tokens),
            // The caller's deadline, passed on to InferenceService, ended the generation there too.
            RpcException { StatusCode: StatusCode.DeadlineExceeded } when requestToken.IsCancellationRequested =>
                new AssistantOutcome(StoreMessageStatus.Cancelled, choice.Content, "cancelled", tokens),
            RpcException r => new AssistantOutcome(StoreMessageStatus.Failed, choice.Content, "error", tokens, $"{r.StatusCode}: {r.Status.Detail}"),
            _ => new AssistantOutcome(StoreMessageStatus.Failed, choice.Content, "error", tokens, failure.GetType().Name),
        };
        try
        {
            // Not the request's token: a reply whose client went away must still be recorded.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await store.CompleteAssistantMessageAsync(owner, conversationId, replyId, outcome, timeout.Token);
        }
        catch (Exception e) when (failure is not null)
        {
            // The generation already failed; that error is what the caller sees. The reply stays in progress and
            // the store's start-up recovery marks it failed.
            logger.LogWarning(e, "Could not record the outcome of reply {ReplyId}", replyId);
        }
        if (contentLogging.Value.LogContent)
            logger.LogInformation("Reply {ReplyId} ({Status}): {Content}", replyId, outcome.Status, choice.Content);
    }

    /// <summary>A raw prompt is sent whole: it either fits with the requested reply or is refused.</summary>
    private FittedPrompt FitRaw(int promptTokens, int requestedMaxNewTokens)
    {
        var room = model.ContextLength - promptTokens;
        if (room < 1 || requestedMaxNewTokens > room)
            throw new ContextWindowExceededException(
                $"The prompt has {promptTokens} tokens; with {Math.Max(1, requestedMaxNewTokens)} more for the reply it exceeds the model's context length of {model.ContextLength} tokens.");
        var maxNew = requestedMaxNewTokens > 0 ? requestedMaxNewTokens : Math.Min(ContextWindowFitter.DefaultMaxNewTokens, room);
        return new FittedPrompt([], promptTokens, 0, maxNew);
    }

    /// <summary>What the turn answers: a stored conversation, a stateless message list, or a raw prompt.</summary>
    /// <param name="Anchor">Stored conversations: the message the new user message follows (null: it is a first
    /// message), or with regenerate the user message answered again.</param>
    /// <param name="ContinuedText">With continue_reply: the text of the reply being continued (the last message).</param>
    private sealed record Turn(Guid? ConversationId, List<DialogueMessage> Messages, string? RawPrompt = null, Guid? Anchor = null, string? ContinuedText = null);

    private async Task<Turn> GatherAsync(ChatRequest request, CancellationToken cancellationToken)
    {
        if (request.Prompt.Length > 0)
        {
            if (request.ConversationId.Length > 0 || request.UserMessage.Length > 0 || request.Messages.Count > 0 || request.Regenerate || request.ContinueReply)
                throw Invalid("prompt", "prompt excludes conversation_id, user_message, messages, regenerate and continue_reply.");
            return new Turn(null, [], request.Prompt);
        }
        if (string.IsNullOrEmpty(request.ConversationId))
        {
            if (request.Messages.Count == 0) throw Invalid("messages", "messages must not be empty (or give a conversation_id).");
            if (request.Messages.Count > MaxMessages) throw Invalid("messages", $"messages has {request.Messages.Count} entries; at most {MaxMessages} are accepted.");
            if (request.Regenerate) throw Invalid("regenerate", "regenerate needs a conversation_id.");
            if (request.ContinueReply) throw Invalid("continue_reply", "continue_reply needs a conversation_id.");
            if (request.ToolResults.Count > 0) throw Invalid("tool_results", "tool_results needs a conversation_id; stateless calls send tool messages in messages.");
            var list = new List<DialogueMessage>(request.Messages.Count);
            for (var i = 0; i < request.Messages.Count; i++) list.Add(ToDialogueMessage(request.Messages[i], $"messages[{i}]"));
            if (list[^1].Role is not ("user" or "tool")) throw Invalid("messages", "the last message must be a user or tool message.");
            return new Turn(null, list);
        }

        if (request.Messages.Count > 0) throw Invalid("messages", "give either conversation_id or messages, not both.");
        if (request.ToolResults.Count > 0 && (request.Regenerate || request.ContinueReply || request.UserMessage.Length > 0))
            throw Invalid("tool_results", "tool_results excludes user_message, regenerate and continue_reply.");
        for (var i = 0; i < request.ToolResults.Count; i++)
        {
            var result = ToDialogueMessage(request.ToolResults[i], $"tool_results[{i}]");
            if (result.Role != "tool") throw Invalid($"tool_results[{i}].role", "tool results have role \"tool\".");
        }
        if (request.Regenerate && request.UserMessage.Length > 0) throw Invalid("user_message", "user_message must be empty when regenerating.");
        if (request.ContinueReply && (request.Regenerate || request.UserMessage.Length > 0))
            throw Invalid("continue_reply", "continue_reply excludes user_message and regenerate.");
        if (request.ContinueReply && !request.HasParentMessageId) throw Invalid("parent_message_id", "parent_message_id must name the reply to continue.");
        if (!request.Regenerate && !request.ContinueReply && request.ToolResults.Count == 0 && string.IsNullOrWhiteSpace(request.UserMessage)) throw Invalid("user_message", "user_message must not be empty.");
        try
        {
            // Checked here, before anything is rendered or stored, so that a refusal names this request's field.
            if (!request.Regenerate && !request.ContinueReply && request.ToolResults.Count == 0) ConversationLimits.Content(request.UserMessage);
            foreach (var result in request.ToolResults) ConversationLimits.Content(result.Content);
        }
        catch (ConversationValidationException e)
        {
            throw Invalid("user_message", e.Message);
        }

        var id = Api.DialogueApi.ParseId(request.ConversationId);
        ConversationDetail detail;
        try
        {
            detail = await store.GetAsync(request.OwnerId, id, includeMessages: true, cancellationToken);
        }
        catch (ConversationNotFoundException e)
        {
            throw new RpcException(new Status(StatusCode.NotFound, e.Message));
        }
        catch (ConversationValidationException e)
        {
            throw Invalid(e.ParamName ?? "request", e.Message);
        }

        var anchor = FindAnchor(request, detail.Messages);
        var messages = new List<DialogueMessage>();
        if (!string.IsNullOrEmpty(detail.Conversation.SystemPrompt)) messages.Add(new("system", detail.Conversation.SystemPrompt));
        foreach (var m in PathTo(anchor, detail.Messages))
        {
            if (m.Status == StoreMessageStatus.InProgress) continue;
            if (m.Role == MessageRole.Assistant && m.Content.Length == 0 && m.ToolCalls is not { Count: > 0 }) continue;
            AddTurn(messages, new(m.Role.ToString().ToLowerInvariant(), m.Content) { ToolCalls = m.ToolCalls, ToolCallId = m.ToolCallId });
        }

        if (request.ContinueReply) return new Turn(id, messages, Anchor: anchor!.ParentId, ContinuedText: anchor.Content);
        if (request.ToolResults.Count > 0)
        {
            if (anchor is not { Role: MessageRole.Assistant, ToolCalls.Count: > 0 })
                throw Invalid("tool_results", "tool results answer an assistant reply that called tools; parent_message_id (or the latest message) is not one.");
            foreach (var result in request.ToolResults)
            {
                if (!anchor.ToolCalls.Any(c => c.Id == result.ToolCallId))
                    throw Invalid("tool_results", $"'{result.ToolCallId}' is not a tool call of the reply answered.");
                messages.Add(new("tool", result.Content) { ToolCallId = result.ToolCallId });
            }
            return new Turn(id, messages, Anchor: anchor.Id);
        }
        if (!request.Regenerate) AddTurn(messages, new("user", request.UserMessage));
        return new Turn(id, messages, Anchor: anchor?.Id);
    }

    /// <summary>
    /// Where the turn attaches in the conversation's tree (see <see cref="ChatRequest.ParentMessageId"/>): for a new
    /// user message the message it follows (null: none), for regenerate the user message to answer again, for
    /// continue_reply the reply to continue.
    /// </summary>
    private static ConversationMessage? FindAnchor(ChatRequest request, IReadOnlyList<ConversationMessage> stored)
    {
        ConversationMessage? Find(Guid? id) => id is null ? null : stored.FirstOrDefault(m => m.Id == id);
        ConversationMessage? anchor;
        if (!request.HasParentMessageId)
        {
            anchor = stored.Count == 0 ? null : stored[^1];
        }
        else if (request.ParentMessageId.Length == 0 && !request.Regenerate)
        {
            anchor = null;
        }
        else
        {
            anchor = Guid.TryParse(request.ParentMessageId, out var parentId) ? Find(parentId) : null;
            if (anchor is null) throw Invalid("parent_message_id", $"parent_message_id '{request.ParentMessageId}' is not a message of this conversation.");
        }
        if (request.ContinueReply)
            return anchor is { Role: MessageRole.Assistant, Status: not StoreMessageStatus.InProgress, Content.Length: > 0 }
                ? anchor
                : throw Invalid("continue_reply", "parent_message_id must name a finished assistant reply with text.");
        if (!request.Regenerate) return anchor;

        // Taking a reply again answers the message it answered.
        if (anchor?.Role == MessageRole.Assistant) anchor = Find(anchor.ParentId);
        return anchor?.Role == MessageRole.User
            ? anchor
            : throw Invalid("regenerate", "there is no user message to answer there.");
    }

    /// <summary>
    /// A message of the request (<c>messages[i]</c> or <c>tool_results[i]</c>, named by <paramref name="field"/>) as the
    /// model will see it: system, user, assistant (text, tool calls or both) or tool (a result naming its call).
    /// </summary>
    private DialogueMessage ToDialogueMessage(Protos.Chat.V1.ChatMessage m, string field)
    {
        if (m.Role is not ("system" or "user" or "assistant" or "tool"))
            throw Invalid("messages", $"{field}.role is '{m.Role}'; expected system, user, assistant or tool.");
        if (!m.HasContent && !(m.Role == "assistant" && m.ToolCalls.Count > 0))
            throw Invalid($"{field}.content", "content is required (only an assistant message with tool_calls may leave it out).");
        if (m.ToolCalls.Count > 0 && m.Role != "assistant") throw Invalid($"{field}.tool_calls", "only assistant messages call tools.");
        if ((m.Role == "tool") != (m.ToolCallId.Length > 0))
            throw Invalid($"{field}.tool_call_id", m.Role == "tool" ? "a tool message must name the call it answers." : "only tool messages have a tool_call_id.");
        if (m.ToolCallId.Length > 64) throw Invalid($"{field}.tool_call_id", "at most 64 characters are accepted.");
        ToolSet.RefuseControlTokens($"{field}.tool_call_id", m.ToolCallId, model.SpecialTokenStrings);
        if (m.ToolCalls.Count == 0) return new DialogueMessage(m.Role, m.Content) { ToolCallId = m.Role == "tool" ? m.ToolCallId : null };

        var calls = new List<FunctionCall>(m.ToolCalls.Count);
        for (var j = 0; j < m.ToolCalls.Count; j++)
        {
            var call = m.ToolCalls[j];
            if (call.Id.Length == 0 || call.Id.Length > 64) throw Invalid($"{field}.tool_calls[{j}].id", "a tool call needs an id of 1 to 64 characters.");
            if (call.Name.Length == 0) throw Invalid($"{field}.tool_calls[{j}].name", "a tool call needs the function's name.");
            ToolSet.RefuseControlTokens($"{field}.tool_calls[{j}].id", call.Id, model.SpecialTokenStrings);
            ToolSet.RefuseControlTokens($"{field}.tool_calls[{j}].name", call.Name, model.SpecialTokenStrings);
            ToolSet.RefuseControlTokens($"{field}.tool_calls[{j}].arguments", call.Arguments, model.SpecialTokenStrings);
            calls.Add(FunctionCall.FromProto(call));
        }
        return new DialogueMessage(m.Role, m.Content) { ToolCalls = calls };
    }

    /// <summary>The messages from the first one down to <paramref name="last"/>, following parents.</summary>
    private static List<ConversationMessage> PathTo(ConversationMessage? last, IReadOnlyList<ConversationMessage> stored)
    {
        var byId = stored.ToDictionary(m => m.Id);
        var path = new List<ConversationMessage>();
        // A parent always has a smaller sequence number than its child, so the walk ends.
        for (var m = last; m is not null; m = m.ParentId is { } p ? byId.GetValueOrDefault(p) : null) path.Add(m);
        path.Reverse();
        return path;
    }

    /// <summary>
    /// Appends a stored message to the history the model sees, keeping user and assistant turns alternating (chat
    /// templates such as Llama 2's refuse anything else): of consecutive assistant messages the last counts (a
    /// regenerated reply replaces the one before it), and of consecutive user messages the last counts too — the
    /// earlier one got no reply (it failed before its first token, or the replica serving it died before storing
    /// one), so it is left out of the model's context; it stays in the stored conversation.
    /// </summary>
    private static void AddTurn(List<DialogueMessage> messages, DialogueMessage message)
    {
        if (message.Role is "assistant" or "user" && messages.Count > 0 && messages[^1].Role == message.Role) messages[^1] = message;
        else messages.Add(message);
    }

    internal static GenerationParameters ValidateSettings(GenerationSettings s, out string[] stops)
    {
        if (s.MaxTokens < 0) throw Invalid("settings.max_tokens", "settings.max_tokens must be positive (or 0 for the default).");
        if (s.HasTemperature && !(s.Temperature >= 0 && s.Temperature <= 2)) throw Invalid("settings.temperature", $"settings.temperature is {s.Temperature}; it must be in [0, 2].");
        if (!(s.TopP >= 0 && s.TopP <= 1)) throw Invalid("settings.top_p", $"settings.top_p is {s.TopP}; it must be in (0, 1].");
        if (s.TopK < 0) throw Invalid("settings.top_k", "settings.top_k must not be negative.");
        if (!(s.MinP >= 0 && s.MinP < 1)) throw Invalid("settings.min_p", $"settings.min_p is {s.MinP}; it must be in [0, 1).");
        if (!(s.PresencePenalty >= -2 && s.PresencePenalty <= 2)) throw Invalid("settings.presence_penalty", "settings.presence_penalty must be in [-2, 2].");
        if (!(s.FrequencyPenalty >= -2 && s.FrequencyPenalty <= 2)) throw Invalid("settings.frequency_penalty", "settings.frequency_penalty must be in [-2, 2].");
        if (!(s.RepetitionPenalty >= 0 && s.RepetitionPenalty <= 2)) throw Invalid("settings.repetition_penalty", "settings.repetition_penalty must be in (0, 2].");
        if (s.N < 0 || s.N > MaxChoices) throw Invalid("settings.n", $"settings.n is {s.N}; it must be in [1, {MaxChoices}].");
        if (s.TopLogprobs < 0 || s.TopLogprobs > MaxTopLogprobs) throw Invalid("settings.top_logprobs", $"settings.top_logprobs must be in [0, {MaxTopLogprobs}].");
        if (s.Stop.Count > MaxStopStrings) throw Invalid("settings.stop", $"settings.stop has {s.Stop.Count} strings; at most {MaxStopStrings} are accepted.");
        foreach (var stop in s.Stop)
            if (stop.Length == 0 || stop.Length > MaxStopStringLength)
                throw Invalid("settings.stop", $"each settings.stop string must have 1..{MaxStopStringLength} characters.");
        stops = [.. s.Stop];
        return new GenerationParameters
        {
            MaxNewTokens = s.MaxTokens,
            Temperature = s.HasTemperature ? s.Temperature : 1f,
            TopP = s.TopP == 0 ? 1f : s.TopP,
            TopK = s.TopK,
            MinP = s.MinP,
            PresencePenalty = s.PresencePenalty,
            FrequencyPenalty = s.FrequencyPenalty,
            RepetitionPenalty = s.RepetitionPenalty == 0 ? 1f : s.RepetitionPenalty,
            Seed = s.HasSeed ? s.Seed : null,
            N = s.N == 0 ? 1 : s.N,
            Logprobs = s.Logprobs || s.TopLogprobs > 0,
            TopLogprobs = s.TopLogprobs,
        };
    }

    private static RpcException Invalid(string field, string message) =>
        new(new Status(StatusCode.InvalidArgument, message.StartsWith(field, StringComparison.Ordinal) ? message : $"{field}: {message}"));

    /// <summary>Token ids to released text for one choice: detokenizer, then stop strings.</summary>
    /// <param name="trim">Trim the reply (chat); a raw completion continues its prompt and keeps every character.</param>
    /// <param name="continued">The text of the reply this choice continues (continue_reply): the start of the content,
    /// never streamed again; what follows it is not trimmed at its start.</param>
    /// <param name="toolCalls">Finds tool calls in the released text when tools are offered: they are streamed as
    /// tool-call deltas, and a reply that made any finishes with "tool_calls" instead of "stop".</param>
    private sealed class ChoiceState(int index, IChatTokenizer tokenizer, string[] stops, bool deferFinished, bool trim, string continued, ToolCallParser? toolCalls)
    {
        private readonly StreamingDetokenizer _detokenizer = tokenizer.CreateStreamingDetokenizer(skipSpecialTokens: true);
        private readonly StopSequenceMatcher _stops = new(stops);
        private readonly StringBuilder _content = new(continued);
        private readonly List<TextTokenLogprob> _pendingLogprobs = [];
        private string _heldWhitespace = "";

        public bool Finished { get; private set; }
        public int TokenCount { get; private set; }
        public string? FinishReason { get; private set; }
        public string Content => _content.ToString();
        public IReadOnlyList<FunctionCall>? ToolCalls => toolCalls is { Calls.Count: > 0 } ? toolCalls.Calls : null;

        public async Task OnTokenAsync(TokenGenerated token, IServerStreamWriter<ChatEvent> output, CancellationToken ct)
        {
            if (Finished) return;
            TokenCount++;
            if (token.Logprob is float lp) _pendingLogprobs.Add(ToLogprob(token.TokenId, lp, token.TopCandidates));
            var released = _stops.Push(_detokenizer.Push(token.TokenId));
            await EmitAsync(released, output, ct, final: false);
            if (_stops.Stopped) await FinishAsync("stop", output, ct);
        }

        public async Task FinishAsync(string reason, IServerStreamWriter<ChatEvent> output, CancellationToken ct)
        {
            if (Finished) return;
            Finished = true;
            var tail = "";
            if (!_stops.Stopped)
            {
                tail = _stops.Push(_detokenizer.Flush());
                if (!_stops.Stopped) tail += _stops.Flush();
            }
            await EmitAsync(tail, output, ct, final: true);
            FinishReason = reason == "stop" && ToolCalls is not null ? "tool_calls" : reason;
            reason = FinishReason;
            if (!deferFinished) await output.WriteAsync(new ChatEvent { Finished = new ChatFinished { Index = index, FinishReason = reason } }, ct);
        }

        /// <summary>The Finished event held back until the reply was stored as <paramref name="assistantMessageId"/>.</summary>
        public Task WriteDeferredFinishedAsync(string assistantMessageId, IServerStreamWriter<ChatEvent> output, CancellationToken ct) =>
            output.WriteAsync(new ChatEvent
            {
                Finished = new ChatFinished { Index = index, FinishReason = FinishReason ?? "stop", AssistantMessageId = assistantMessageId },
            }, ct);

        /// <summary>
        /// Streams released text. Replies are trimmed: whitespace before the first visible character is dropped, and
        /// whitespace at the end is held back until more text follows it, so that the end of the reply (the model's
        /// space before its end-of-turn) is dropped without anything streamed ever being taken back.
        /// </summary>
        private async Task EmitAsync(string released, IServerStreamWriter<ChatEvent> output, CancellationToken ct, bool final)
        {
            var calls = new List<FunctionCall>();
            var text = toolCalls is null ? released : toolCalls.Push(released, calls) + (final ? toolCalls.Flush(calls) : "");
            await EmitTextAsync(text, output, ct, force: final && _pendingLogprobs.Count > 0, final);
            if (calls.Count == 0) return;
            var delta = new ChatDelta { Index = index };
            foreach (var call in calls)
                delta.ToolCalls.Add(new ToolCallDelta { Index = toolCalls!.Calls.Count - calls.Count + delta.ToolCalls.Count, Id = call.Id, Name = call.Name, Arguments = call.Arguments });
            delta.Logprobs.AddRange(_pendingLogprobs);
            _pendingLogprobs.Clear();
            await output.WriteAsync(new ChatEvent { Delta = delta }, ct);
        }

        private async Task EmitTextAsync(string text, IServerStreamWriter<ChatEvent> output, CancellationToken ct, bool force, bool final)
        {
            // U+0000 (a model can produce the byte) cannot be stored as PostgreSQL text; the client sees what is stored.
            if (text.Contains('\0')) text = text.Replace('\0', '\uFFFD');
            if (trim && _content.Length == 0) text = text.TrimStart();
            text = _heldWhitespace + text;
            var visible = trim ? text.TrimEnd().Length : text.Length;
            _heldWhitespace = final || visible == 0 && _content.Length == 0 ? "" : text[visible..];
            text = text[..visible];
            if (text.Length == 0 && !force) return;
            _content.Append(text);
            var delta = new ChatDelta { Index = index, Text = text };
            delta.Logprobs.AddRange(_pendingLogprobs);
            _pendingLogprobs.Clear();
            await output.WriteAsync(new ChatEvent { Delta = delta }, ct);
        }

        private TextTokenLogprob ToLogprob(int id, float logprob, IReadOnlyList<TokenCandidate>? top)
        {
            var text = tokenizer.Decode([id]);
            var entry = new TextTokenLogprob { Token = text, Logprob = logprob, Bytes = Google.Protobuf.ByteString.CopyFromUtf8(text) };
            if (top is not null)
                foreach (var c in top)
                {
                    var candidate = tokenizer.Decode([c.TokenId]);
                    entry.TopLogprobs.Add(new TextTopLogprob { Token = candidate, Logprob = c.Logprob, Bytes = Google.Protobuf.ByteString.CopyFromUtf8(candidate) });
                }
            return entry;
        }
    }
}
