using ChatServices.EndToEnd.Tests.Infrastructure;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Grpc.Core;

namespace ChatServices.EndToEnd.Tests;

/// <summary>
/// Graceful drain: SIGTERM to one of two InferenceService replicas while 8 replies stream (to the one running more
/// of them). The replica turns
/// not ready and refuses new work (DialogueService retries it on the other replica, which takes the new requests
/// meanwhile); its running generations finish within the drain time, or are stopped at its end with a clear status
/// that the stored reply repeats. Nothing is left half-stored: every reply ends complete or failed, with the text
/// that was streamed.
/// </summary>
public sealed class DrainTests
{
    private const int Replies = 8;

    [Fact]
    public async Task Replies_in_flight_finish_within_the_drain_time_while_the_other_replica_takes_new_requests()
    {
        await using var system = await StartAsync(drainSeconds: 60);
        var (terminated, outcomes) = await RunThroughTerminationAsync(system, maxTokens: 120);

        Assert.All(outcomes, o => Assert.Null(o.Error));
        Assert.Equal(0, await terminated.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        await AssertStoredAsDeliveredAsync(system, outcomes);
    }

    [Fact]
    public async Task Replies_still_running_at_the_end_of_the_drain_time_end_with_a_clear_status_that_is_stored()
    {
        await using var system = await StartAsync(drainSeconds: 1);
        var (terminated, outcomes) = await RunThroughTerminationAsync(system, maxTokens: 900);

        // The replies on the terminated replica were stopped; the others ran to their end.
        var stopped = outcomes.Where(o => o.Error is not null).ToList();
        Assert.NotEmpty(stopped);
        Assert.All(stopped, o =>
        {
            Assert.Equal(StatusCode.Unavailable, o.Error!.StatusCode);
            Assert.Contains("InferenceService shut down: the generation was stopped after the drain time of 1 s.", o.Error.Status.Detail);
        });
        Assert.Equal(0, await terminated.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        await AssertStoredAsDeliveredAsync(system, outcomes);
    }

    private static Task<ChatSystem> StartAsync(int drainSeconds) =>
        ChatSystem.StartAsync(extraEnvironment: new Dictionary<string, string> { ["Shutdown__DrainTimeout"] = TimeSpan.FromSeconds(drainSeconds).ToString() }, inferenceReplicas: 2);

    private sealed record Outcome(string ConversationId, string Text, bool Finished, RpcException? Error);

    /// <summary>
    /// Starts <see cref="Replies"/> stored conversations' replies, waits until every one has streamed a token,
    /// SIGTERMs the replica running more of them, checks that new requests are served meanwhile, and returns that
    /// replica and how each reply ended.
    /// </summary>
    private static async Task<(ServiceProcess Terminated, List<Outcome> Outcomes)> RunThroughTerminationAsync(ChatSystem system, int maxTokens)
    {
        var client = system.DialogueClient;
        var streaming = new List<TaskCompletionSource>();
        var replies = new List<Task<Outcome>>();
        for (var i = 0; i < Replies; i++)
        {
            var conversation = await client.CreateConversationAsync(new CreateConversationRequest { OwnerId = "drain" });
            var firstToken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            streaming.Add(firstToken);
            replies.Add(StreamAsync(client, conversation.Id, maxTokens, firstToken));
        }
        var allStreaming = Task.WhenAll(streaming.Select(s => s.Task));
        Assert.True(await Task.WhenAny(allStreaming, Task.Delay(TimeSpan.FromSeconds(60))) == allStreaming, "the replies did not start\n" + system.Logs);

        var running = new List<uint>();
        foreach (var replica in system.InferenceReplicas)
        {
            using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(replica.Address);
            running.Add((await new Inference.InferenceClient(channel.WithCredential(TestCredentials.AdminKey)).GetModelInfoAsync(new GetModelInfoRequest())).Running);
        }
        var terminated = system.InferenceReplicas[running.IndexOf(running.Max())];
        terminated.Terminate();
        // The terminating replica says how many generations it drains: some must be on it, or nothing was tested.
        Assert.True(SpinWait.SpinUntil(() => System.Text.RegularExpressions.Regex.IsMatch(terminated.Output, @"Draining: [1-8] generation"), TimeSpan.FromSeconds(20)),
            $"the terminated replica had no generation to drain (running: {string.Join(", ", running)})\n" + system.Logs);

        // Meanwhile new requests are answered (by the other replica).
        for (var i = 0; i < 3; i++)
        {
            var reply = await client.ChatToEndAsync(new ChatRequest
            {
                OwnerId = "drain", Messages = { new ChatMessage { Role = "user", Content = $"New request {i}" } },
                Settings = new GenerationSettings { MaxTokens = 4 },
            });
            Assert.True(reply.Usage.CompletionTokens > 0);
        }
        return (terminated, [.. await Task.WhenAll(replies)]);
    }

    private static async Task<Outcome> StreamAsync(Dialogue.DialogueClient client, string conversationId, int maxTokens, TaskCompletionSource firstToken)
    {
        var text = new System.Text.StringBuilder();
        var finished = false;
        try
        {
            using var call = client.Chat(new ChatRequest
            {
                OwnerId = "drain", ConversationId = conversationId, UserMessage = "Tell me a long story.",
                Settings = new GenerationSettings { MaxTokens = maxTokens, Temperature = 1 },
            }, deadline: DateTime.UtcNow.AddMinutes(3));
            await foreach (var e in call.ResponseStream.ReadAllAsync())
            {
                if (e.EventCase == ChatEvent.EventOneofCase.Delta)
                {
                    text.Append(e.Delta.Text);
                    firstToken.TrySetResult();
                }
                else if (e.EventCase == ChatEvent.EventOneofCase.Finished) finished = true;
            }
            return new Outcome(conversationId, text.ToString(), finished, null);
        }
        catch (RpcException e)
        {
            firstToken.TrySetResult();
            return new Outcome(conversationId, text.ToString(), finished, e);
        }
    }

    /// <summary>Every stored reply ended (complete, or failed with the status the caller saw) holding exactly what was streamed.</summary>
    private static async Task AssertStoredAsDeliveredAsync(ChatSystem system, IEnumerable<Outcome> outcomes)
    {
        foreach (var o in outcomes)
        {
            var stored = await system.DialogueClient.GetConversationAsync(new GetConversationRequest { OwnerId = "drain", ConversationId = o.ConversationId, IncludeMessages = true });
            var reply = stored.Messages[^1];
            Assert.Equal("assistant", reply.Role);
            Assert.Equal(o.Text, reply.Content);
            if (o.Error is null)
            {
                Assert.True(o.Finished);
                Assert.Equal(MessageStatus.Complete, reply.Status);
            }
            else
            {
                Assert.Equal(MessageStatus.Failed, reply.Status);
                Assert.Equal($"{o.Error.StatusCode}: {o.Error.Status.Detail}", reply.Error);
            }
        }
    }
}
