using ChatServices.Protos.Chat.V1;

namespace ChatServices.Client;

// Stored conversations, for use with ChatOptions.ConversationId: the typed Dialogue calls with this client's owner,
// credentials, deadline and error mapping.
public sealed partial class ChatServicesChatClient
{
    /// <summary>Creates a stored conversation; continue it with its <see cref="Conversation.Id"/> in <see cref="Microsoft.Extensions.AI.ChatOptions.ConversationId"/>.</summary>
    /// <param name="title">At most 256 characters; null: "New chat".</param>
    /// <param name="systemPrompt">Sent ahead of the messages on every turn, if set.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task<Conversation> CreateConversationAsync(string? title = null, string? systemPrompt = null, CancellationToken cancellationToken = default) =>
        _connection.UnaryAsync(options => _dialogue.CreateConversationAsync(
            new CreateConversationRequest { OwnerId = Owner, Title = title ?? "", SystemPrompt = systemPrompt ?? "" }, options), cancellationToken);

    /// <summary>A stored conversation, with its messages in order unless <paramref name="includeMessages"/> is false.</summary>
    public Task<Conversation> GetConversationAsync(string conversationId, bool includeMessages = true, CancellationToken cancellationToken = default) =>
        _connection.UnaryAsync(options => _dialogue.GetConversationAsync(
            new GetConversationRequest { OwnerId = Owner, ConversationId = conversationId, IncludeMessages = includeMessages }, options), cancellationToken);

    /// <summary>One page of the caller's conversations, newest first; pass <see cref="ListConversationsResponse.NextPageToken"/> for the next.</summary>
    /// <param name="pageSize">1..100; 0: the service's default (20).</param>
    /// <param name="pageToken">Empty or null for the first page.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public Task<ListConversationsResponse> ListConversationsAsync(int pageSize = 0, string? pageToken = null, CancellationToken cancellationToken = default) =>
        _connection.UnaryAsync(options => _dialogue.ListConversationsAsync(
            new ListConversationsRequest { OwnerId = Owner, PageSize = pageSize, PageToken = pageToken ?? "" }, options), cancellationToken);

    /// <summary>Deletes a stored conversation and all its messages.</summary>
    public async Task DeleteConversationAsync(string conversationId, CancellationToken cancellationToken = default) =>
        await _connection.UnaryAsync(options => _dialogue.DeleteConversationAsync(
            new DeleteConversationRequest { OwnerId = Owner, ConversationId = conversationId }, options), cancellationToken);

    private string Owner => _connection.Options.OwnerId ?? "";
}
