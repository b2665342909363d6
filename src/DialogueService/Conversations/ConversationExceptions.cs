namespace ChatServices.DialogueService.Conversations;

/// <summary>
/// The conversation (or message) does not exist for this owner. Raised alike when it does not exist at all and
/// when it belongs to another owner, so that ids cannot be probed. Maps to NOT_FOUND.
/// </summary>
public sealed class ConversationNotFoundException(Guid conversationId)
    : Exception($"Conversation '{conversationId}' was not found.")
{
    public Guid ConversationId { get; } = conversationId;
}

/// <summary>
/// An argument is out of its allowed range or format. Maps to INVALID_ARGUMENT. Its message is written for the
/// caller as it is (without ArgumentException's "(Parameter 'x')" suffix, which names a C# parameter).
/// </summary>
public sealed class ConversationValidationException(string paramName, string message)
    : ArgumentException(message, paramName)
{
    public override string Message { get; } = message;
}

/// <summary>
/// The request conflicts with the current state, such as completing an assistant message that is already
/// final. Maps to FAILED_PRECONDITION.
/// </summary>
public sealed class ConversationStateException(string message) : InvalidOperationException(message);
