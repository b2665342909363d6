using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net;
using ChatServices.Grpc.Tests.Infrastructure;
using ChatServices.Grpc.Tests.Interop;
using ChatServices.ServiceDefaults;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ChatServices.Grpc.Tests.Server;

/// <summary>How calls end as the services log and count them (CallOutcomeInterceptor, installed by
/// AddGrpcServiceDefaults): a client that goes away mid-stream is normal — counted, logged at debug without a stack
/// trace, never a warning or an error — and a status a handler ends with on purpose is not logged with a stack
/// trace either.</summary>
public sealed class CallOutcomeTests : IAsyncLifetime
{
    private readonly CapturingLoggerProvider _logs = new();
    private WebApplication _app = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        builder.AddServiceDefaults();
        builder.AddGrpcServiceDefaults();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(_logs);
        builder.Services.AddSingleton<CallLog>();
        _app = builder.Build();
        _app.MapGrpcService<EchoService>();
        _app.MapGrpcServiceDefaults();
        await _app.StartAsync();
        _channel = GrpcChannel.ForAddress(_app.Urls.First());
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _app.DisposeAsync();
    }

    [Fact]
    public async Task A_client_that_goes_away_mid_stream_is_counted_and_logged_quietly()
    {
        using var abandoned = new CounterListener("chatservices.rpc.server.abandoned_calls");
        var client = new Echo.EchoClient(_channel);
        var id = "leaves-" + Guid.NewGuid();
        using (var call = client.ServerStream(new EchoRequest { Message = id, Count = 100, DelayMs = 200 }))
        {
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        } // disposing an unfinished call resets its stream

        Assert.True(await _app.Services.GetRequiredService<CallLog>().WaitForCancellationAsync(id, TimeSpan.FromSeconds(10)));
        Assert.True(SpinWait.SpinUntil(() => abandoned.Total("reason", "cancelled") == 1, TimeSpan.FromSeconds(10)));
        Assert.Contains(_logs.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("/chatservices.testing.v1.Echo/ServerStream ended early"));
        Assert.DoesNotContain(_logs.Entries, e => e.Level >= LogLevel.Warning || e.Exception is not null);
    }

    [Fact]
    public async Task A_status_a_handler_ends_with_on_purpose_is_logged_without_a_stack_trace()
    {
        var client = new Echo.EchoClient(_channel);
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
            await client.UnaryAsync(new EchoRequest { Message = "bad", FailCode = (int)StatusCode.InvalidArgument, FailMessage = "'message' is bad." }));

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(_logs.Entries, e => e.Level == LogLevel.Debug && e.Message.Contains("InvalidArgument"));
        Assert.DoesNotContain(_logs.Entries, e => e.Exception is not null);
    }

    private sealed record LogEntry(string Category, LogLevel Level, string Message, Exception? Exception);

    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        private readonly ConcurrentQueue<LogEntry> _entries = new();

        public IReadOnlyCollection<LogEntry> Entries => _entries;

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingLoggerProvider owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                owner._entries.Enqueue(new LogEntry(category, logLevel, formatter(state, exception), exception));
        }
    }

    /// <summary>Sums one counter's measurements by tag, as an exporter would see them.</summary>
    private sealed class CounterListener : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(long Value, KeyValuePair<string, object?>[] Tags)> _measurements = new();

        public CounterListener(string name)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Name == name) listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<long>((_, value, tags, _) => _measurements.Enqueue((value, tags.ToArray())));
            _listener.Start();
        }

        public long Total(string tag, string value) =>
            _measurements.Where(m => m.Tags.Any(t => t.Key == tag && Equals(t.Value, value))).Sum(m => m.Value);

        public void Dispose() => _listener.Dispose();
    }
}
