using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;

namespace ChatServices.ServiceDefaults;

/// <summary>
/// The management endpoint: a second Kestrel endpoint, named <c>Management</c> in configuration
/// (<c>Kestrel:Endpoints:Management:Url</c>, plain HTTP/1.1), for what scrapers and the kubelet call — Prometheus
/// text at <c>/metrics</c>, <c>/healthz</c> and <c>/readyz</c>. The gRPC services need it because their main
/// endpoint is HTTP/2 cleartext only, which neither Prometheus nor kubelet HTTP probes speak; the Gateway serves
/// all three on its main port and configures none.
/// </summary>
/// <remarks>
/// Invariant: when a management endpoint is configured, <c>/metrics</c> answers only on it (404 on the main
/// endpoint), so that a network policy on the management port alone decides who may scrape. The health endpoints
/// answer on every endpoint. Port 0 lets the OS choose (tests); <see cref="Address"/> tells which it chose.
/// </remarks>
public sealed class ManagementEndpoint
{
    public const string EndpointName = "Management";
    public const string ConfigurationSection = "Kestrel:Endpoints:" + EndpointName;

    private ListenOptions? _listenOptions;

    internal ManagementEndpoint(IConfiguration configuration)
    {
        IsConfigured = !string.IsNullOrWhiteSpace(configuration[ConfigurationSection + ":Url"]);
    }

    /// <summary>True when <c>Kestrel:Endpoints:Management:Url</c> is set.</summary>
    public bool IsConfigured { get; }

    /// <summary>The address the management endpoint listens on once the server has started, or null.</summary>
    public Uri? Address => _listenOptions?.IPEndPoint is { } endPoint
        ? new Uri($"http://{(endPoint.Address.Equals(IPAddress.Any) ? IPAddress.Loopback : endPoint.Address)}:{endPoint.Port}")
        : null;

    /// <summary>True when the request arrived on the management endpoint.</summary>
    public static bool IsManagementRequest(HttpContext context) => context.Features.Get<ManagementConnection>() is not null;

    /// <summary>Marks every connection accepted on the management endpoint, so that requests can tell where they came in.</summary>
    internal void Attach(ListenOptions listenOptions)
    {
        _listenOptions = listenOptions;
        listenOptions.Use(next => connection =>
        {
            connection.Features.Set(ManagementConnection.Instance);
            return next(connection);
        });
    }

    /// <summary>The connection feature that marks a management connection.</summary>
    private sealed class ManagementConnection
    {
        public static readonly ManagementConnection Instance = new();
    }
}
