using System.Text.Json;
using System.Runtime.CompilerServices;
using ChatServices.Protos.Chat.V1;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.AI;
using AiChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace ChatServices.Client;

/// <summary>
/// <see cref="IChatClient"/> over <c>chat.v1.Dialogue/Chat</c>: a reply streams as it is generated, with its
/// finish reason and token usage. Stateless by default (send the whole history each time); with
/// <see cref="ChatOptions.ConversationId"/> it continues a conversation stored by the service (send only the new
/// user message). Cancelling the token cancels the call on the wire, which stops generation and frees the
/// model's memory for it. Thread-safe; make one and reuse it.
/// </summary>
/// <remarks>
/// <para>ChatOptions map to the Chat RPC's settings: <see cref="ChatOptions.Temperature"/>, <see cref="ChatOptions.TopP"/>,
/// <see cref="ChatOptions.TopK"/>, <see cref="ChatOptions.MaxOutputTokens"/>, <see cref="ChatOptions.StopSequences"/>,
/// <see cref="ChatOptions.Seed"/>, <see cref="ChatOptions.FrequencyPenalty"/>, <see cref="ChatOptions.PresencePenalty"/>,
/// <see cref="ChatOptions.Instructions"/> (a system message, stateless calls), <see cref="ChatOptions.ModelId"/>
/// (checked against the served model) and <see cref="ChatOptions.AdditionalProperties"/> <c>min_p</c>,
/// <c>repetition_penalty</c> and <c>regenerate</c>. The service does not support tool calling or JSON /
/// schema response formats yet: <see cref="ChatOptions.Tools"/>, a required <see cref="ChatOptions.ToolMode"/>,
/// tool messages, a non-text <see cref="ChatOptions.ResponseFormat"/>, non-text content and any other option it
/// cannot honour throw <see cref="NotSupportedException"/> or <see cref="ArgumentException"/> instead of being ignored.</para>
/// <para>Errors: INVALID_ARGUMENT from the service is an <see cref="ArgumentException"/>, a deadline a
/// <see cref="TimeoutException"/>, the caller's cancellation an <see cref="OperationCanceledException"/>, and any
/// other status a <see cref="ChatServicesException"/> carrying it.</para>
/// </remarks>
public sealed partial class ChatServicesChatClient : IChatClient
{
    /// <summary>The provider name in <see cref="ChatClientMetadata"/> (and so in OpenTelemetry's <c>gen_ai.provider.name</c>).</summary>
    public const string ProviderName = "chatservices";

    private readonly ChatServicesConnection _connection;
    private readonly Dialogue.DialogueClient _dialogue;
    private readonly ChatServicesTokenizer _tokenizer;
    private readonly ChatClientMetadata _metadata;
    private Task<ModelCard>? _model;

    /// <summary>A client of DialogueService at <paramref name="address"/> (e.g. <c>http://127.0.0.1:50051</c>), on a channel of its own.</summary>
    /// <param name="address">DialogueService's gRPC address.</param>
    /// <param name="apiKey">An API key (<c>csk_…</c>), or null to send none.</param>
    public ChatServicesChatClient(string address, string? apiKey = null)
        : this(new Uri(address, UriKind.Absolute), apiKey)
    {
    }

    /// <inheritdoc cref="ChatServicesChatClient(string, string?)"/>
    public ChatServicesChatClient(Uri address, string? apiKey = null)
        : this(new ChatServicesClientOptions { Address = address, ApiKey = apiKey })
    {
    }

    /// <summary>A client configured by <paramref name="options"/> (<see cref="ChatServicesClientOptions.Address"/> required), on a channel of its own.</summary>
    public ChatServicesChatClient(ChatServicesClientOptions options)
        : this(ChatServicesConnection.ForOptions(options ?? throw new ArgumentNullException(nameof(options))))
    {
    }

    /// <summary>
    /// A client on your own <paramref name="channel"/> (its address, TLS, retries and limits are yours; it is not
    /// disposed with this client; put credentials on it with <see cref="ChatServicesCredentials"/>). <paramref name="options"/> may
    /// add an owner and deadlines, but neither an address nor credentials.
    /// </summary>
    public ChatServicesChatClient(GrpcChannel channel, ChatServicesClientOptions? options = null)
        : this(ChatServicesConnection.ForChannel(channel, options))
    {
    }

    /// <summary>A client over typed clients from the gRPC client factory, whose channels carry the credentials.</summary>
    internal ChatServicesChatClient(Dialogue.DialogueClient dialogue, Tokenizer.TokenizerClient tokenizer, ChatServicesClientOptions options)
        : this(new ChatServicesConnection(invoker: null, options, channel: null, ownsChannel: false), dialogue, tokenizer)
    {
    }

    private ChatServicesChatClient(ChatServicesConnection connection)
        : this(connection, new Dialogue.DialogueClient(connection.Invoker!), new Tokenizer.TokenizerClient(connection.Invoker!))
    {
    }

    private ChatServicesChatClient(ChatServicesConnection connection, Dialogue.DialogueClient dialogue, Tokenizer.TokenizerClient tokenizer)
    {
        _connection = connection;
        _dialogue = dialogue;
        _tokenizer = new ChatServicesTokenizer(connection, tokenizer, ownsConnection: false);
        _metadata = new ChatClientMetadata(ProviderName, connection.Options.Address ?? ChannelAddress(connection.Channel), connection.Options.ModelId);
    }

    /// <summary>The typed <c>chat.v1.Dialogue</c> client this one calls: conversations (create, list, get, rename, delete, append).</summary>
    public Dialogue.DialogueClient Dialogue => _dialogue;

    /// <summary>A tokenizer client on the same connection.</summary>
    public ChatServicesTokenizer Tokenizer => _tokenizer;

    /// <inheritdoc/>
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        await GetStreamingResponseAsync(messages, options, cancellationToken).ToChatResponseAsync(cancellationToken);

    /// <inheritdoc/>
    /// <remarks>
    /// The first update carries the conversation id (conversation calls), the model and, in its
    /// <see cref="ChatResponseUpdate.AdditionalProperties"/>, <c>prompt_tokens</c>, <c>dropped_messages</c> (oldest messages
    /// left out to fit the context window) and <c>user_message_id</c>; then text updates; then one with the
    /// <see cref="ChatResponseUpdate.FinishReason"/> (and <c>assistant_message_id</c> for a stored reply); then one
    /// with a <see cref="UsageContent"/>.
    /// </remarks>
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<AiChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var request = ChatRequestMapper.Map(this, messages, options, _connection.Options.OwnerId);
        if (options?.ModelId is { } modelId) await CheckModelAsync(modelId, cancellationToken);

        var callOptions = ChatServicesConnection.CallOptions(_connection.Options.ChatTimeout, cancellationToken);
        // Disposing the call (the caller stops reading, or this method ends) cancels it on the wire if still running.
        using var call = _dialogue.Chat(request, callOptions);
        string? conversationId = null, model = null;
        while (true)
        {
            ChatEvent e;
            try
            {
                if (!await call.ResponseStream.MoveNext(cancellationToken)) yield break;
                e = call.ResponseStream.Current;
            }
            catch (RpcException error)
            {
                throw ChatServicesException.From(error, cancellationToken);
            }

            var update = new ChatResponseUpdate(ChatRole.Assistant, (IList<AIContent>?)null) { RawRepresentation = e };
            switch (e.EventCase)
            {
                case ChatEvent.EventOneofCase.Started:
                    conversationId = e.Started.ConversationId.Length > 0 ? e.Started.ConversationId : null;
                    model = e.Started.Model;
                    update.AdditionalProperties = new()
                    {
                        ["prompt_tokens"] = e.Started.PromptTokens,
                        ["dropped_messages"] = e.Started.DroppedMessages,
                    };
                    if (e.Started.UserMessageId.Length > 0) update.AdditionalProperties["user_message_id"] = e.Started.UserMessageId;
                    break;
                case ChatEvent.EventOneofCase.Delta:
                    if (e.Delta.Text.Length > 0 || e.Delta.ToolCalls.Count == 0) update.Contents.Add(new TextContent(e.Delta.Text) { RawRepresentation = e.Delta });
                    // DialogueService sends each call whole, once it is recognised.
                    foreach (var toolCall in e.Delta.ToolCalls)
                    {
                        var content = FunctionCallContent.CreateFromParsedArguments(toolCall.Arguments, toolCall.Id, toolCall.Name,
                            static json => JsonSerializer.Deserialize<Dictionary<string, object?>>(json, AIJsonUtilities.DefaultOptions));
                        content.RawRepresentation = toolCall;
                        update.Contents.Add(content);
                    }
                    break;
                case ChatEvent.EventOneofCase.Finished:
                    update.FinishReason = FinishReason(e.Finished.FinishReason);
                    if (e.Finished.AssistantMessageId.Length > 0)
                        update.AdditionalProperties = new() { ["assistant_message_id"] = e.Finished.AssistantMessageId };
                    break;
                case ChatEvent.EventOneofCase.Usage:
                    update.Contents.Add(new UsageContent(new UsageDetails
                    {
                        InputTokenCount = e.Usage.PromptTokens,
                        OutputTokenCount = e.Usage.CompletionTokens,
                        TotalTokenCount = e.Usage.PromptTokens + e.Usage.CompletionTokens,
                        CachedInputTokenCount = e.Usage.CachedPromptTokens,
                    }) { RawRepresentation = e.Usage });
                    break;
                default:
                    continue; // an event kind newer than this library
            }
            update.ConversationId = conversationId;
            update.ModelId = model;
            yield return update;
        }
    }

    /// <summary>
    /// Returns, by type: this client, its <see cref="ChatClientMetadata"/>, the typed gRPC clients
    /// (<see cref="Protos.Chat.V1.Dialogue.DialogueClient"/>, <see cref="Protos.Chat.V1.Tokenizer.TokenizerClient"/>),
    /// <see cref="ChatServicesTokenizer"/>, the <see cref="CallInvoker"/> and the <see cref="GrpcChannel"/> (where this
    /// client has its own: not when registered through the gRPC client factory) and a copy of its <see cref="ChatServicesClientOptions"/>; null for anything else or any key.
    /// </summary>
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(Dialogue.DialogueClient)) return _dialogue;
        if (serviceType == typeof(ChatServicesTokenizer)) return _tokenizer;
        if (serviceType == typeof(Tokenizer.TokenizerClient)) return _tokenizer.Client;
        if (serviceType == typeof(CallInvoker)) return _connection.Invoker;
        if (serviceType == typeof(GrpcChannel)) return _connection.Channel;
        if (serviceType == typeof(ChatServicesClientOptions)) return _connection.Options.Clone();
        return null;
    }

    /// <summary>Closes the channel if this client made it.</summary>
    public void Dispose() => _connection.Dispose();

    /// <summary>DialogueService's finish reasons as M.E.AI's: "stop" and "length" are the well-known ones; others keep their name.</summary>
    internal static ChatFinishReason FinishReason(string reason) => reason switch
    {
        "stop" => ChatFinishReason.Stop,
        "length" => ChatFinishReason.Length,
        "tool_calls" => ChatFinishReason.ToolCalls,
        _ => new ChatFinishReason(reason),
    };

    /// <summary>Refuses a ChatOptions.ModelId other than the one model this deployment serves (asked once, then remembered).</summary>
    private async Task CheckModelAsync(string modelId, CancellationToken cancellationToken)
    {
        // Fetched once for every caller: not with one caller's token, which would fail the others' checks.
        var model = _model ??= GetModelAsync(CancellationToken.None);
        ModelCard card;
        try
        {
            card = await model.WaitAsync(cancellationToken);
        }
        catch
        {
            _model = null; // not remembered: the next call asks again
            throw;
        }
        if (card.Id != modelId)
            throw new ArgumentException($"ChatOptions.ModelId is '{modelId}', but this deployment serves '{card.Id}'.", "options");
    }

    private Task<ModelCard> GetModelAsync(CancellationToken cancellationToken) =>
        _connection.UnaryAsync(options => _dialogue.GetModelAsync(new GetModelRequest(), options), cancellationToken);

    private static Uri? ChannelAddress(GrpcChannel? channel) =>
        channel is null ? null : Uri.TryCreate(channel.Target, UriKind.Absolute, out var uri) ? uri : null;
}
