using System.Globalization;
using System.Threading.RateLimiting;
using ChatServices.Gateway.Auth;
using ChatServices.Gateway.OpenAi;
using Microsoft.AspNetCore.RateLimiting;

namespace ChatServices.Gateway.Limits;

/// <summary>
/// Requests per minute per caller, with ASP.NET Core rate limiting: a sliding window (six ten-second segments)
/// partitioned by API key, refusing at once with 429 and <c>Retry-After</c> rather than queueing.
/// </summary>
public static class RequestLimits
{
    public const string PolicyName = "per-key";

    public static IServiceCollection AddGatewayRateLimits(this IServiceCollection services)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<TokenBudgets>();
        services.AddRateLimiter(options =>
        {
            options.AddPolicy(PolicyName, context =>
            {
                // Runs after authentication; an unauthenticated request never reaches a limited endpoint.
                var caller = context.FindCaller();
                if (caller is null || caller.RequestsPerMinute <= 0)
                {
                    return RateLimitPartition.GetNoLimiter(caller?.PartitionKey ?? "none");
                }
                return RateLimitPartition.GetSlidingWindowLimiter(caller.PartitionKey, _ => new SlidingWindowRateLimiterOptions
                {
                    PermitLimit = caller.RequestsPerMinute,
                    Window = TimeSpan.FromMinutes(1),
                    SegmentsPerWindow = 6,
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            options.OnRejected = (rejected, cancellationToken) =>
            {
                var retryAfter = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromSeconds(10);
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                var limit = rejected.HttpContext.FindCaller()?.RequestsPerMinute ?? 0;
                return new ValueTask(ApiErrorMiddleware.WriteErrorAsync(rejected.HttpContext, ApiException.RateLimited("requests",
                    $"Rate limit reached for requests per minute: limit {limit.ToString(CultureInfo.InvariantCulture)}. Try again in {seconds}s.", seconds)));
            };
        });
        return services;
    }
}
