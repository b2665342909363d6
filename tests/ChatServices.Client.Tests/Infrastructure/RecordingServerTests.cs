namespace ChatServices.Client.Tests.Infrastructure;

/// <summary>Tests against a <see cref="RecordingDialogueServer"/> of their own, started before each test and stopped after it.</summary>
public abstract class RecordingServerTests : IAsyncLifetime
{
    private ChatServicesChatClient? _client;

    protected RecordingDialogueServer Server { get; set; } = null!;

    /// <summary>A client on its own channel to the server, with the settings of <see cref="Configure"/>; made on first use.</summary>
    protected ChatServicesChatClient Client => _client ??= new ChatServicesChatClient(Configure(new ChatServicesClientOptions { Address = Server.Address }));

    protected virtual ChatServicesClientOptions Configure(ChatServicesClientOptions options) => options;

    public async Task InitializeAsync() => Server = await RecordingDialogueServer.StartAsync();

    public async Task DisposeAsync()
    {
        _client?.Dispose();
        await Server.DisposeAsync();
    }
}
