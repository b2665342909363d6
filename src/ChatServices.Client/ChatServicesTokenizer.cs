using ChatServices.Protos.Chat.V1;
using Grpc.Net.Client;

namespace ChatServices.Client;

/// <summary>
/// The served model's tokenizer over <c>chat.v1.Tokenizer</c>: how many tokens a text is (to budget a prompt against
/// the context window) and which. Errors map as <see cref="ChatServicesChatClient"/>'s do. Thread-safe.
/// </summary>
public sealed class ChatServicesTokenizer : IDisposable
{
    private readonly ChatServicesConnection _connection;
    private readonly bool _ownsConnection;

    /// <summary>A tokenizer client of DialogueService at <paramref name="address"/>, on a channel of its own.</summary>
    /// <param name="address">DialogueService's gRPC address, e.g. <c>http://127.0.0.1:50051</c>.</param>
    /// <param name="apiKey">An API key (<c>csk_…</c>), or null to send none.</param>
    public ChatServicesTokenizer(string address, string? apiKey = null)
        : this(new ChatServicesClientOptions { Address = new Uri(address, UriKind.Absolute), ApiKey = apiKey })
    {
    }

    /// <summary>A tokenizer client configured by <paramref name="options"/>, on a channel of its own.</summary>
    public ChatServicesTokenizer(ChatServicesClientOptions options)
        : this(ChatServicesConnection.ForOptions(options ?? throw new ArgumentNullException(nameof(options))), ownsConnection: true)
    {
    }

    /// <summary>A tokenizer client on your own <paramref name="channel"/> (not disposed with it; credentials go on it, see <see cref="ChatServicesCredentials"/>).</summary>
    public ChatServicesTokenizer(GrpcChannel channel, ChatServicesClientOptions? options = null)
        : this(ChatServicesConnection.ForChannel(channel, options), ownsConnection: true)
    {
    }

    private ChatServicesTokenizer(ChatServicesConnection connection, bool ownsConnection)
        : this(connection, new Tokenizer.TokenizerClient(connection.Invoker!), ownsConnection)
    {
    }

    internal ChatServicesTokenizer(ChatServicesConnection connection, Tokenizer.TokenizerClient client, bool ownsConnection)
    {
        _connection = connection;
        Client = client;
        _ownsConnection = ownsConnection;
    }

    /// <summary>The typed <c>chat.v1.Tokenizer</c> client (also Decode and ApplyChatTemplate).</summary>
    public Tokenizer.TokenizerClient Client { get; }

    /// <summary>The token ids of <paramref name="text"/>.</summary>
    /// <param name="text">Any text; special-token strings in it are encoded as plain text.</param>
    /// <param name="addSpecialTokens">Add the model's special tokens (e.g. BOS) as its tokenizer defines.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public async Task<IReadOnlyList<int>> EncodeAsync(string text, bool addSpecialTokens = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        var response = await _connection.UnaryAsync(options => Client.EncodeAsync(new EncodeRequest { Text = text, AddSpecialTokens = addSpecialTokens }, options), cancellationToken);
        return response.TokenIds;
    }

    /// <summary>How many tokens <paramref name="text"/> is, without returning them.</summary>
    /// <param name="text">Any text.</param>
    /// <param name="addSpecialTokens">Count the model's special tokens (e.g. BOS) too.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public async Task<int> CountTokensAsync(string text, bool addSpecialTokens = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(text);
        var response = await _connection.UnaryAsync(options => Client.CountTokensAsync(new CountTokensRequest { Text = text, AddSpecialTokens = addSpecialTokens }, options), cancellationToken);
        return response.TokenCount;
    }

    /// <summary>The text of <paramref name="tokenIds"/>.</summary>
    /// <param name="tokenIds">Ids in the model's vocabulary.</param>
    /// <param name="skipSpecialTokens">Leave special tokens (BOS, EOS, template markers) out of the text.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    public async Task<string> DecodeAsync(IEnumerable<int> tokenIds, bool skipSpecialTokens = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(tokenIds);
        var request = new DecodeRequest { SkipSpecialTokens = skipSpecialTokens };
        request.TokenIds.AddRange(tokenIds);
        var response = await _connection.UnaryAsync(options => Client.DecodeAsync(request, options), cancellationToken);
        return response.Text;
    }

    /// <summary>Closes the channel if this client made it.</summary>
    public void Dispose()
    {
        if (_ownsConnection) _connection.Dispose();
    }
}
