namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// Durable conversation state. Every call names the owner it acts for and sees only that owner's
/// conversations: another owner's conversation is reported as not found, exactly like a missing one.
/// </summary>
/// <remarks>
/// Errors: <see cref="ConversationValidationException"/> for bad arguments, <see cref="ConversationNotFoundException"/>
/// for a missing (or foreign) conversation or message, <see cref="ConversationStateException"/> for a state
/// conflict. Every write is one database transaction: it is fully applied or not at all, also when the
/// process dies half-way.
///
/// The generation lifecycle: the chat flow appends the user message (<see cref="AppendMessageAsync"/>, committed
/// before generation starts), reserves the reply's place with <see cref="BeginAssistantMessageAsync"/>, and when
/// generation ends writes the reply once with <see cref="CompleteAssistantMessageAsync"/>: completed, or cancelled
/// or failed with the partial content. Pass a token that the client's disconnect does not cancel to the
/// completion call, or a cancelled generation would not be recorded.
/// </remarks>
public interface IConversationStore
{
    /// <summary>Creates the schema or brings it up to date. Safe to run from several processes at once.</summary>
    Task<MigrationResult> MigrateAsync(CancellationToken cancellationToken = default);

    Task<Conversation> CreateAsync(
        string ownerId, string? title, string? systemPrompt = null,
        IReadOnlyDictionary<string, string>? metadata = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// The owner's conversations, most recently updated first (ties by id). <paramref name="pageToken"/> is null
    /// for the first page and otherwise the token of the page before. Pages never repeat or skip a conversation
    /// that is not updated while the listing goes on; conversations created meanwhile appear only on a new listing.
    /// </summary>
    Task<ConversationPage> ListAsync(
        string ownerId, int pageSize, string? pageToken, CancellationToken cancellationToken = default);

    Task<ConversationDetail> GetAsync(
        string ownerId, Guid conversationId, bool includeMessages, CancellationToken cancellationToken = default);

    Task<Conversation> RenameAsync(
        string ownerId, Guid conversationId, string title, CancellationToken cancellationToken = default);

    /// <summary>Replaces the system prompt (null: none) and moves the conversation up.</summary>
    Task<Conversation> SetSystemPromptAsync(
        string ownerId, Guid conversationId, string? systemPrompt, CancellationToken cancellationToken = default);

    /// <summary>Deletes the conversation and all its messages.</summary>
    Task DeleteAsync(string ownerId, Guid conversationId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends a final message (any status but <see cref="MessageStatus.InProgress"/>) as the next in sequence.
    /// It is committed when the task completes.
    /// </summary>
    /// <param name="parentId">The message it follows: null for the latest message of the conversation (a straight
    /// line), <see cref="Guid.Empty"/> for a new first message, or a message of this conversation (a branch).</param>
    /// <param name="toolCallId">For a <see cref="MessageRole.Tool"/> message (required there): the call it answers.</param>
    Task<ConversationMessage> AppendMessageAsync(
        string ownerId, Guid conversationId, MessageRole role, string content,
        MessageStatus status = MessageStatus.Completed, Guid? parentId = null, CancellationToken cancellationToken = default,
        string? toolCallId = null);

    /// <summary>
    /// Reserves the next place in the sequence for an assistant reply about to be generated: an empty
    /// <see cref="MessageStatus.InProgress"/> message following <paramref name="parentId"/> (as for
    /// <see cref="AppendMessageAsync"/>).
    /// </summary>
    Task<ConversationMessage> BeginAssistantMessageAsync(
        string ownerId, Guid conversationId, Guid? parentId = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Writes the outcome of a generation into the message <see cref="BeginAssistantMessageAsync"/> returned.
    /// Allowed once: a message that is already final raises <see cref="ConversationStateException"/>.
    /// </summary>
    Task<ConversationMessage> CompleteAssistantMessageAsync(
        string ownerId, Guid conversationId, Guid messageId, AssistantOutcome outcome,
        CancellationToken cancellationToken = default);

    /// <summary>
    /// Marks as failed the assistant messages still in progress that were begun before
    /// <paramref name="startedBefore"/>: replies whose generating process died. Returns how many.
    /// </summary>
    Task<int> FailAbandonedMessagesAsync(DateTimeOffset startedBefore, CancellationToken cancellationToken = default);
}

/// <summary>What <see cref="IConversationStore.MigrateAsync"/> did.</summary>
/// <param name="Applied">Versions applied by this call, in order (empty when the schema was up to date).</param>
/// <param name="SchemaVersion">The highest version recorded in the database afterwards.</param>
public sealed record MigrationResult(IReadOnlyList<int> Applied, int SchemaVersion);
