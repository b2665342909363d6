using ChatServices.Client.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using Grpc.Core;
using Microsoft.Extensions.AI;

namespace ChatServices.Client.Tests;

/// <summary>Retries of UNAVAILABLE before the first event, deadlines, cancellation on the wire, and statuses as .NET exceptions.</summary>
public sealed class ResilienceAndErrorTests : RecordingServerTests
{
    private ChatServicesChatClient ClientWith(Action<ChatServicesClientOptions>? configure = null)
    {
        var options = new ChatServicesClientOptions { Address = Server.Address };
        configure?.Invoke(options);
        return new ChatServicesChatClient(options);
    }

    [Fact]
    public async Task A_chat_refused_as_unavailable_before_its_first_event_is_retried()
    {
        Server.Failures.Enqueue(new Status(StatusCode.Unavailable, "draining"));
        Server.Failures.Enqueue(new Status(StatusCode.Unavailable, "draining"));
        using var client = ClientWith();

        var response = await client.GetResponseAsync([new(ChatRole.User, "hi")]);

        Assert.Equal("Hello world", response.Text);
        Assert.Equal(3, Server.CallsTo("/chat.v1.Dialogue/Chat").Count);
    }

    [Fact]
    public async Task Retries_stop_after_max_retries_with_a_clear_error()
    {
        for (var i = 0; i < 3; i++) Server.Failures.Enqueue(new Status(StatusCode.Unavailable, "no inference replica"));
        using var client = ClientWith(o => o.MaxRetries = 1);

        var error = await Assert.ThrowsAsync<ChatServicesException>(() => client.GetResponseAsync([new(ChatRole.User, "hi")]));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains("no inference replica", error.Message);
        Assert.Equal(2, Server.CallsTo("/chat.v1.Dialogue/Chat").Count);
    }

    [Fact]
    public async Task A_chat_that_fails_after_its_first_event_is_not_retried()
    {
        Server.Chat = async (_, output, _) =>
        {
            await output.WriteAsync(new ChatEvent { Started = new ChatStarted { Model = "m" } });
            await output.WriteAsync(new ChatEvent { Delta = new ChatDelta { Text = "partial" } });
            throw new RpcException(new Status(StatusCode.Unavailable, "inference replica lost"));
        };
        using var client = ClientWith();
        var texts = new List<string>();

        var error = await Assert.ThrowsAsync<ChatServicesException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync([new(ChatRole.User, "hi")])) texts.Add(update.Text);
        });

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Equal(["", "partial"], texts);
        Assert.Single(Server.CallsTo("/chat.v1.Dialogue/Chat"));
    }

    [Fact]
    public async Task Other_statuses_are_not_retried()
    {
        Server.Failures.Enqueue(new Status(StatusCode.ResourceExhausted, "queue full"));
        using var client = ClientWith();

        var error = await Assert.ThrowsAsync<ChatServicesException>(() => client.GetResponseAsync([new(ChatRole.User, "hi")]));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Single(Server.Calls);
    }

    [Fact]
    public async Task Cancelling_mid_stream_cancels_the_call_on_the_server()
    {
        Server.Chat = async (_, output, context) =>
        {
            await output.WriteAsync(new ChatEvent { Started = new ChatStarted { Model = "m" } });
            for (var i = 0; ; i++)
            {
                await output.WriteAsync(new ChatEvent { Delta = new ChatDelta { Text = $"{i} " } });
                await Task.Delay(20, context.CancellationToken);
            }
        };
        using var client = ClientWith();
        using var cancel = new CancellationTokenSource();
        var deltas = 0;

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync([new(ChatRole.User, "hi")], cancellationToken: cancel.Token))
                if (update.Text.Length > 0 && ++deltas == 3) await cancel.CancelAsync();
        });

        Assert.Equal(cancel.Token, error.CancellationToken);
        await Server.ChatCancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_caller_that_stops_reading_ends_the_call_on_the_server()
    {
        Server.Chat = async (_, output, context) =>
        {
            await output.WriteAsync(new ChatEvent { Started = new ChatStarted { Model = "m" } });
            while (true)
            {
                await output.WriteAsync(new ChatEvent { Delta = new ChatDelta { Text = "x" } });
                await Task.Delay(20, context.CancellationToken);
            }
        };
        using var client = ClientWith();

        await foreach (var update in client.GetStreamingResponseAsync([new(ChatRole.User, "hi")]))
            if (update.Text.Length > 0) break;

        await Server.ChatCancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_reply_slower_than_the_chat_timeout_fails_with_a_timeout()
    {
        Server.Chat = async (_, output, context) =>
        {
            await output.WriteAsync(new ChatEvent { Started = new ChatStarted { Model = "m" } });
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
        };
        using var client = ClientWith(o => o.ChatTimeout = TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAsync<TimeoutException>(() => client.GetResponseAsync([new(ChatRole.User, "hi")]));
        await Server.ChatCancelled.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    public static TheoryData<StatusCode, Type> Mapped => new()
    {
        { StatusCode.InvalidArgument, typeof(ArgumentException) },
        { StatusCode.DeadlineExceeded, typeof(TimeoutException) },
        { StatusCode.NotFound, typeof(ChatServicesException) },
        { StatusCode.Unauthenticated, typeof(ChatServicesException) },
        { StatusCode.PermissionDenied, typeof(ChatServicesException) },
        { StatusCode.FailedPrecondition, typeof(ChatServicesException) },
    };

    [Theory]
    [MemberData(nameof(Mapped))]
    public async Task A_status_becomes_a_dotnet_exception_that_keeps_the_service_s_message(StatusCode status, Type expected)
    {
        Server.Failures.Enqueue(new Status(status, "settings.top_p is 1.5; expected (0, 1]"));
        Server.Failures.Enqueue(new Status(status, "settings.top_p is 1.5; expected (0, 1]"));
        using var client = ClientWith();

        var chat = await Assert.ThrowsAnyAsync<Exception>(() => client.GetResponseAsync([new(ChatRole.User, "hi")]));
        var tokenizer = await Assert.ThrowsAnyAsync<Exception>(() => client.Tokenizer.CountTokensAsync("hi"));

        foreach (var error in new[] { chat, tokenizer })
        {
            Assert.IsType(expected, error);
            Assert.Contains("settings.top_p is 1.5", error.Message);
            Assert.Equal(status, Assert.IsType<RpcException>(error.InnerException).StatusCode);
            if (error is ChatServicesException e) Assert.Equal(status, e.StatusCode);
        }
    }

    [Fact]
    public async Task An_unreachable_service_is_unavailable_after_the_retries()
    {
        var address = Server.Address;
        await Server.DisposeAsync();
        using var client = new ChatServicesChatClient(new ChatServicesClientOptions { Address = address, MaxRetries = 1 });

        var error = await Assert.ThrowsAsync<ChatServicesException>(() => client.GetResponseAsync([new(ChatRole.User, "hi")]));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Server = await RecordingDialogueServer.StartAsync(); // for DisposeAsync
    }
}
