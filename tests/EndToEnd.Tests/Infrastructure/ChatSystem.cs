using ChatServices.DialogueService.Tests;
using ChatServices.ServiceDefaults;
using ChatServices.ServiceDefaults.Identity;
using Grpc.Net.Client;
using ChatServices.ModelBuilder;
using ChatServices.ModelBuilder.Folder;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.EndToEnd.Tests.Infrastructure;

/// <summary>
/// The whole system on loopback: InferenceService, DialogueService and Gateway as three processes, serving a
/// small random model that tools/ModelBuilder builds with the real Llama 2 tokenizer. The conversation store is
/// SQLite in a directory of the run, or PostgreSQL when a connection string is given. Identity as a deployment
/// sets it up (<see cref="TestCredentials"/>): DialogueService calls InferenceService with its service key;
/// DialogueService accepts the test's keys and JWTs, and — as <c>./run.sh</c> runs it — unauthenticated loopback
/// callers as owner <c>local</c> (the Gateway here sends no credential, like the embedded default).
/// </summary>
public sealed class ChatSystem : IAsyncDisposable
{
    private readonly string _directory;
    private GrpcChannel? _dialogueChannel, _inferenceChannel;

    private ChatSystem(string directory, IReadOnlyList<ServiceProcess> inference, ServiceProcess dialogue, ServiceProcess gateway)
    {
        _directory = directory;
        InferenceReplicas = inference;
        Inference = inference[0];
        Dialogue = dialogue;
        Gateway = gateway;
    }

    public ServiceProcess Inference { get; }

    /// <summary>Every InferenceService replica DialogueService spreads requests over (<see cref="Inference"/> is the first).</summary>
    public IReadOnlyList<ServiceProcess> InferenceReplicas { get; }
    public ServiceProcess Dialogue { get; }
    public ServiceProcess Gateway { get; }

    public GrpcChannel DialogueChannel => _dialogueChannel ??= GrpcChannel.ForAddress(Dialogue.Address);

    /// <summary>A backend team's client with a <c>service</c> key: it may act for any owner it names.</summary>
    public Protos.Chat.V1.Dialogue.DialogueClient DialogueClient => DialogueClientWith(TestCredentials.BackendServiceKey);

    /// <summary>A client whose calls carry <paramref name="credential"/> (an API key or a JWT; none when null).</summary>
    public Protos.Chat.V1.Dialogue.DialogueClient DialogueClientWith(string? credential) => new(DialogueChannel.WithCredential(credential));

    /// <summary>An operator's client (role <c>admin</c>).</summary>
    public Protos.Chat.V1.Inference.InferenceClient InferenceClient => InferenceClientWith(TestCredentials.AdminKey);

    public Protos.Chat.V1.Inference.InferenceClient InferenceClientWith(string? credential) =>
        new((_inferenceChannel ??= GrpcChannel.ForAddress(Inference.Address)).WithCredential(credential));

    /// <summary>Every service's log, for assertion messages.</summary>
    public string Logs =>
        string.Concat(InferenceReplicas.Select((r, i) => $"--- InferenceService {i}\n{r.Output}\n")) + $"--- DialogueService\n{Dialogue.Output}\n--- Gateway\n{Gateway.Output}";

    /// <summary>
    /// The served model: large enough that a long reply takes a few seconds on a loaded 2-core machine (so that a
    /// test can cancel it mid-way), small enough to build in about a second.
    /// </summary>
    public static RandomModelSpec Model { get; } = new()
    {
        Layers = 4, HiddenSize = 256, Heads = 4, KvHeads = 2, IntermediateSize = 768, ContextLength = 1024, Seed = 3,
    };

    public static async Task<ChatSystem> StartAsync(
        string? postgresConnectionString = null, IReadOnlyDictionary<string, string>? extraEnvironment = null, int inferenceReplicas = 1)
    {
        var directory = Directory.CreateTempSubdirectory("chatservices-e2e-").FullName;
        var model = Path.Combine(directory, "model");
        ModelFolderBuilder.FromRandom(Model,
            model, new BuildOptions(), Path.Combine(TestPaths.NodeModules, "@lenml", "tokenizer-llama2", "models"));

        var extra = extraEnvironment ?? new Dictionary<string, string>();
        // Each process binds its own ports (port 0) and is started once the address it needs of the one before is known.
        var started = new List<ServiceProcess>();
        try
        {
            var inference = new List<ServiceProcess>();
            for (var i = 0; i < inferenceReplicas; i++)
            {
                inference.Add(await Track(started, ServiceProcess.StartAsync("InferenceService", With(extra, new()
                {
                    ["Kestrel__Endpoints__Grpc__Url"] = ServiceProcess.AnyPort,
                    ["Kestrel__Endpoints__Management__Url"] = ServiceProcess.AnyPort, // not appsettings.json's fixed 9052
                    ["Inference__ModelPath"] = model,
                    ["Inference__KvCacheBudgetMiB"] = "64",
                    ["Inference__IntraOpThreads"] = "1",
                    ["OTEL_SERVICE_NAME"] = "inference-service",
                    ["Identity__ApiKeys__0__Hash"] = ApiKeyFormat.Hash(TestCredentials.DialogueServiceKey),
                    ["Identity__ApiKeys__0__Owner"] = "dialogue-service",
                    ["Identity__ApiKeys__0__Role"] = Roles.Service,
                    ["Identity__ApiKeys__1__Hash"] = ApiKeyFormat.Hash(TestCredentials.AdminKey),
                    ["Identity__ApiKeys__1__Owner"] = "operator",
                    ["Identity__ApiKeys__1__Role"] = Roles.Admin,
                }), http2: true)));
            }
            var dialogueEnvironment = new Dictionary<string, string>
            {
                ["Kestrel__Endpoints__Grpc__Url"] = ServiceProcess.AnyPort,
                ["Kestrel__Endpoints__Management__Url"] = ServiceProcess.AnyPort, // not appsettings.json's fixed 9051
                ["Dialogue__ModelPath"] = model,
                ["Data__Directory"] = Path.Combine(directory, "data"),
                ["OTEL_SERVICE_NAME"] = "dialogue-service",
                ["Dialogue__Inference__ApiKey"] = TestCredentials.DialogueServiceKey,
                ["Identity__AllowAnonymousOnLoopback"] = "true", // as ./run.sh runs it
            };
            TestCredentials.AddDialogueIdentity(dialogueEnvironment);
            for (var i = 0; i < inference.Count; i++) dialogueEnvironment[$"Dialogue__Inference__Endpoints__{i}"] = inference[i].Address.ToString().TrimEnd('/');
            if (postgresConnectionString is not null) dialogueEnvironment["ConnectionStrings__Conversations"] = postgresConnectionString;
            var dialogue = await Track(started, ServiceProcess.StartAsync("DialogueService", With(extra, dialogueEnvironment), http2: true));
            var gateway = await Track(started, ServiceProcess.StartAsync("Gateway", With(extra, new()
            {
                ["Kestrel__Endpoints__Http__Url"] = ServiceProcess.AnyPort,
                ["Gateway__DialogueEndpoint"] = dialogue.Address.ToString().TrimEnd('/'),
                ["Gateway__AllowAnonymousOnLoopback"] = "true", // as ./run.sh runs it
                // The suite's classes share this system and send a few hundred requests a minute as one caller: the
                // default 120 would refuse some of them by timing. Limits are tested with keys of their own
                // (KeysAcrossGatewaysTests) and in Gateway.Tests.
                ["Gateway__DefaultLimits__RequestsPerMinute"] = "100000",
                ["OTEL_SERVICE_NAME"] = "gateway",
            }), http2: false));

            var ready = TimeSpan.FromSeconds(90);
            foreach (var replica in inference) await replica.WaitUntilReadyAsync(http2: true, ready);
            await dialogue.WaitUntilReadyAsync(http2: true, ready);
            await gateway.WaitUntilReadyAsync(http2: false, ready);
            return new ChatSystem(directory, inference, dialogue, gateway);
        }
        catch
        {
            foreach (var process in started) await process.DisposeAsync();
            try { Directory.Delete(directory, recursive: true); } catch (IOException) { }
            throw;
        }
    }

    private static async Task<ServiceProcess> Track(List<ServiceProcess> started, Task<ServiceProcess> starting)
    {
        var process = await starting;
        started.Add(process);
        return process;
    }

    private static Dictionary<string, string> With(IReadOnlyDictionary<string, string> extra, Dictionary<string, string> own)
    {
        foreach (var (k, v) in extra) own[k] = v;
        return own;
    }

    public async ValueTask DisposeAsync()
    {
        _dialogueChannel?.Dispose();
        _inferenceChannel?.Dispose();
        await Gateway.DisposeAsync();
        await Dialogue.DisposeAsync();
        foreach (var replica in InferenceReplicas) await replica.DisposeAsync();
        try { Directory.Delete(_directory, recursive: true); } catch (IOException) { }
    }
}
