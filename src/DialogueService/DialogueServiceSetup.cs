using ChatServices.DialogueService.Chat;
using ChatServices.DialogueService.Conversations;
using ChatServices.DialogueService.Identity;
using ChatServices.DialogueService.Inference;
using ChatServices.DialogueService.Model;
using ChatServices.ServiceDefaults;
using ChatServices.ServiceDefaults.Identity;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace ChatServices.DialogueService;

/// <summary>What DialogueService is made of, registered in one place.</summary>
public static class DialogueServiceSetup
{
    public static TBuilder AddDialogueServices<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        var services = builder.Services;
        services.Configure<ServedModelOptions>(builder.Configuration.GetSection("Dialogue"));
        services.Configure<InferenceClientOptions>(builder.Configuration.GetSection("Dialogue:Inference"));
        services.AddSingleton(sp => ServedModel.Load(sp.GetRequiredService<IOptions<ServedModelOptions>>().Value));

        // Registered before the readiness gate: its hosted service migrates the schema first.
        services.AddConversationStore(builder.Configuration);
        // API keys live in the same database; they authenticate after those in configuration.
        services.AddSingleton<ApiKeyStore>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IApiKeyValidator, DatabaseApiKeys>());
        services.Configure<KeyLimitOptions>(builder.Configuration.GetSection("Dialogue:Limits"));
        services.AddSingleton<KeyLimits>();

        // The generation reads the deadline of the gRPC call it serves (see InferenceGenerationBackend).
        services.AddHttpContextAccessor();
        services.AddSingleton<InferenceGenerationBackend>();
        services.AddSingleton<IGenerationBackend>(sp => sp.GetRequiredService<InferenceGenerationBackend>());
        services.AddSingleton<ChatPipeline>();
        services.AddHostedService<ReadyWhenLoaded>();
        return builder;
    }

    /// <summary>Loads the model's text side at start (after the schema migration), then marks the service ready.</summary>
    private sealed class ReadyWhenLoaded(IServiceProvider services, Readiness readiness, ILogger<ReadyWhenLoaded> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var model = services.GetRequiredService<ServedModel>();
            if (!model.HasOwnChatTemplate)
                logger.LogWarning("{Folder} has no chat_template; using the built-in Llama 2 chat format.", model.Folder);
            logger.LogInformation("Serving the text side of {Model}: context {Context} tokens, vocabulary {Vocabulary}",
                model.Id, model.ContextLength, model.Tokenizer.VocabularySize);
            readiness.MarkReady();
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken)
        {
            readiness.MarkNotReady("stopping");
            return Task.CompletedTask;
        }
    }
}
