using ChatServices.InferenceService.Engine;
using ChatServices.ServiceDefaults;
using ChatServices.ServiceDefaults.Identity;
using Microsoft.Extensions.Options;

namespace ChatServices.InferenceService.Api;

/// <summary>
/// Loads the engine in the background when the host starts, so the process answers health checks at once and
/// turns ready (readiness, gRPC health SERVING) only when the model is loaded. A load failure is logged and leaves
/// the service not ready, with the reason.
/// </summary>
public sealed class EngineHost(IOptions<InferenceOptions> options, Readiness readiness, ILogger<EngineHost> logger) : IHostedService, IDisposable
{
    private volatile InferenceEngine? _engine;
    private Task? _loading;

    public InferenceEngine? Engine => _engine;
    public string NotLoadedReason { get; private set; } = "loading";

    public Task StartAsync(CancellationToken cancellationToken)
    {
        readiness.MarkNotReady("loading the model");
        _loading = Task.Run(Load, CancellationToken.None);
        return Task.CompletedTask;
    }

    private void Load()
    {
        var o = options.Value;
        try
        {
            o.ModelPath = ResolveModelPath(o.ModelPath);
            _engine = InferenceEngine.Start(o, logger);
            readiness.MarkReady();
        }
        catch (Exception e)
        {
            NotLoadedReason = $"model '{o.ModelPath}' failed to load: {e.Message}";
            logger.LogError(e, "Loading the model from {Path} failed", o.ModelPath);
            readiness.MarkNotReady(NotLoadedReason);
        }
    }

    /// <summary>A relative path is tried against the working directory, then against the program's folder.</summary>
    private static string ResolveModelPath(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new ArgumentException("Inference:ModelPath is not set.");
        if (Path.IsPathRooted(path) || Directory.Exists(path)) return Path.GetFullPath(path);
        return Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, path));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        readiness.MarkNotReady("stopping");
        if (_loading is not null) await _loading.WaitAsync(cancellationToken);
    }

    public void Dispose() => _engine?.Dispose();
}

/// <summary>
/// Registers the engine: the <c>Inference</c> options section, the background loader, and who may call
/// (<see cref="InferenceApi.CallerPolicy"/>: roles <c>service</c> and <c>admin</c>, and <c>user</c> with
/// <c>Inference:AdmitUsers</c>).
/// </summary>
public static class EngineHostExtensions
{
    public static TBuilder AddInferenceEngine<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.Configure<InferenceOptions>(builder.Configuration.GetSection(InferenceOptions.Section));
        builder.Services.AddSingleton<EngineHost>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<EngineHost>());
        var admitUsers = builder.Configuration.GetSection(InferenceOptions.Section).GetValue<bool>(nameof(InferenceOptions.AdmitUsers));
        string[] roles = admitUsers ? [Roles.Service, Roles.Admin, Roles.User] : [Roles.Service, Roles.Admin];
        builder.Services.AddAuthorizationBuilder().AddPolicy(InferenceApi.CallerPolicy, p => p.RequireAuthenticatedUser().RequireRole(roles));
        return builder;
    }
}
