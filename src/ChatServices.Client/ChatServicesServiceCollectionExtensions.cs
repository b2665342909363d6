using ChatServices.Protos.Chat.V1;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace ChatServices.Client;

/// <summary>Registers the ChatServices clients with dependency injection.</summary>
public static class ChatServicesServiceCollectionExtensions
{
    /// <summary>
    /// Registers the typed gRPC clients <see cref="Dialogue.DialogueClient"/> and <see cref="Tokenizer.TokenizerClient"/>
    /// through the gRPC client factory (Grpc.Net.ClientFactory: pooled connections, the credentials of
    /// <paramref name="configure"/> on every call, retries of UNAVAILABLE), <see cref="ChatServicesTokenizer"/>, and
    /// <see cref="IChatClient"/> as a <see cref="ChatServicesChatClient"/>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Sets <see cref="ChatServicesClientOptions.Address"/> (required), the credentials, deadlines and retries.</param>
    /// <returns>The IChatClient's builder, to add middleware: <c>.UseFunctionInvocation()</c>, <c>.UseOpenTelemetry()</c>, <c>.UseLogging()</c>…</returns>
    public static ChatClientBuilder AddChatServicesClient(this IServiceCollection services, Action<ChatServicesClientOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<ChatServicesClientOptions>().Configure(configure).Validate(o =>
        {
            if (o.Address is null) throw new OptionsValidationException(Options.DefaultName, typeof(ChatServicesClientOptions),
                ["ChatServicesClientOptions.Address is required (DialogueService's gRPC address, e.g. http://127.0.0.1:50051)."]);
            ChatServicesConnection.Validate(o);
            return true;
        });

        AddGrpcClient<Dialogue.DialogueClient>(services);
        AddGrpcClient<Tokenizer.TokenizerClient>(services);
        services.TryAddSingleton(sp => new ChatServicesTokenizer(
            new ChatServicesConnection(invoker: null, Settings(sp), channel: null, ownsChannel: false),
            sp.GetRequiredService<Tokenizer.TokenizerClient>(), ownsConnection: false));
        return services.AddChatClient(sp => new ChatServicesChatClient(
            sp.GetRequiredService<Dialogue.DialogueClient>(), sp.GetRequiredService<Tokenizer.TokenizerClient>(), Settings(sp)));
    }

    private static void AddGrpcClient<TClient>(IServiceCollection services) where TClient : class =>
        services.AddGrpcClient<TClient>((sp, o) => o.Address = Settings(sp).Address)
            .ConfigurePrimaryHttpMessageHandler(ChatServicesConnection.CreateHandler)
            .ConfigureChannel((sp, channel) => ChatServicesConnection.ConfigureChannel(channel, Settings(sp)))
            .AddCallCredentials((context, metadata, sp) => ChatServicesCredentials.AddAsync(Settings(sp), metadata, context.CancellationToken));

    private static ChatServicesClientOptions Settings(IServiceProvider services) =>
        services.GetRequiredService<IOptions<ChatServicesClientOptions>>().Value;
}
