using ChatServices.Gateway.OpenAi;
using ChatServices.ServiceDefaults;

namespace ChatServices.Gateway.Upstream;

/// <summary>
/// Marks the Gateway ready once DialogueService has answered GetModel: until then every chat would fail, so
/// load balancers (and ./run.sh) should not send anyone. Asks once a second, logging the first failure and the
/// recovery rather than every attempt. Readiness is not withdrawn afterwards: a later outage is answered per
/// request with 503, which tells clients more than a vanished endpoint.
/// </summary>
public sealed class UpstreamReadiness(DialogueUpstream upstream, Readiness readiness, ILogger<UpstreamReadiness> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        readiness.MarkNotReady("waiting for DialogueService");
        var failures = 0;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var model = await upstream.GetModelAsync(stoppingToken);
                logger.LogInformation("DialogueService serves model {Model} (context {ContextLength} tokens); the Gateway is ready", model.Id, model.ContextLength);
                readiness.MarkReady();
                return;
            }
            catch (ApiException e)
            {
                if (failures++ == 0) logger.LogWarning("DialogueService is not answering yet ({Reason}); retrying every second", e.Message);
                readiness.MarkNotReady("waiting for DialogueService: " + e.Message);
            }
            try
            {
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
