using System.Net;
using System.Net.Sockets;
using ChatServices.Gateway.Tests.Infrastructure;
using ChatServices.Gateway.Upstream;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.Gateway.Tests.Upstream;

/// <summary>
/// Several DialogueService replicas (<c>Gateway:DialogueEndpoints</c>): calls are spread over them and move on to
/// another replica when one cannot be reached, before anything of the reply was sent.
/// </summary>
[Collection(GatewayCollection.Name)]
public sealed class DialogueReplicasTests(GatewayFixture fixture)
{
    [Fact]
    public async Task Every_call_succeeds_when_one_of_two_replicas_is_unreachable()
    {
        var (gateway, address) = await StartWithDeadAndLiveReplicaAsync();
        try
        {
            using var client = fixture.CreateClient(GatewayFixture.AliceKey, address);
            // Round-robin starts every other call on the dead replica: enough calls that both orders are taken,
            // before and after the dead one is put last for its cool-down.
            for (var i = 0; i < 4; i++)
            {
                (await client.GetAsync("/v1/models")).EnsureSuccessStatusCode();

                var created = await client.PostJsonAsync("/api/conversations", """{"title":"failover"}""");
                Assert.Equal(HttpStatusCode.Created, created.StatusCode);
                var id = (await created.JsonAsync()).GetProperty("id").GetString();

                using var reply = await client.PostStreamingAsync($"/api/conversations/{id}/messages", $$"""{"content":"turn {{i}}"}""");
                var events = await ServerSentEventReader.ReadAllAsync(reply);
                Assert.Contains(events, e => e.Name == "finished");
                Assert.DoesNotContain(events, e => e.Name == "error");

                var completion = await client.PostJsonAsync("/v1/chat/completions",
                    """{"model":"test-model","messages":[{"role":"user","content":"hi"}]}""");
                completion.EnsureSuccessStatusCode();
            }
        }
        finally
        {
            await gateway.StopAsync();
            await gateway.DisposeAsync();
        }
    }

    [Fact]
    public async Task When_no_replica_can_serve_the_reason_of_the_one_reached_is_reported_not_the_dead_ones()
    {
        var (gateway, address) = await StartWithDeadAndLiveReplicaAsync();
        try
        {
            using var client = fixture.CreateClient(GatewayFixture.AliceKey, address);
            // Round-robin: one call tries the dead replica first, the other the live one.
            for (var i = 0; i < 2; i++)
            {
                var response = await client.PostJsonAsync("/v1/chat/completions",
                    """{"model":"test-model","messages":[{"role":"user","content":"fail:unavailable"}]}""");
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
                var message = (await response.JsonAsync()).GetProperty("error").GetProperty("message").GetString();
                Assert.Contains("no inference replica", message);
            }
        }
        finally
        {
            await gateway.StopAsync();
            await gateway.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_reply_that_fails_mid_stream_is_not_sent_to_another_replica()
    {
        var (gateway, address) = await GatewayFixture.StartGatewayAsync(fixture.UpstreamAddress, anonymous: false, settings =>
        {
            settings["Gateway:DialogueEndpoints:0"] = fixture.UpstreamAddress.ToString();
            settings["Gateway:DialogueEndpoints:1"] = fixture.UpstreamAddress.ToString();
        });
        try
        {
            using var client = fixture.CreateClient(GatewayFixture.AliceKey, address);
            var before = fixture.Upstream.ChatRequests.Count(r => r.Messages.Count > 0 && r.Messages[^1].Content == "fail:midstream");
            var response = await client.PostJsonAsync("/v1/chat/completions",
                """{"model":"test-model","messages":[{"role":"user","content":"fail:midstream"}],"stream":true}""");
            var body = await response.Content.ReadAsStringAsync();
            Assert.Contains("\"error\"", body);
            var after = fixture.Upstream.ChatRequests.Count(r => r.Messages.Count > 0 && r.Messages[^1].Content == "fail:midstream");
            Assert.Equal(1, after - before);
        }
        finally
        {
            await gateway.StopAsync();
            await gateway.DisposeAsync();
        }
    }

    [Fact]
    public void An_unavailable_replica_is_tried_last_until_its_cool_down_has_passed()
    {
        var time = new ManualTime();
        var a = Replica("http://10.0.0.1:1");
        var b = Replica("http://10.0.0.2:1");
        var c = Replica("http://10.0.0.3:1");
        var replicas = new DialogueReplicas([a, b, c], time);

        var firsts = Enumerable.Range(0, 6).Select(_ => replicas.Order()[0]).ToHashSet();
        Assert.Equal(3, firsts.Count); // round-robin: each replica leads in turn

        replicas.ReportUnavailable(b);
        for (var i = 0; i < 6; i++)
        {
            var order = replicas.Order();
            Assert.Equal(3, order.Distinct().Count());
            Assert.Same(b, order[^1]);
        }

        time.Advance(DialogueReplicas.CoolDown + TimeSpan.FromMilliseconds(1));
        Assert.Contains(Enumerable.Range(0, 6).Select(_ => replicas.Order()[0]), r => r == b);

        replicas.ReportUnavailable(c);
        replicas.ReportAvailable(c); // it answered again: back in the rotation at once
        Assert.Contains(Enumerable.Range(0, 6).Select(_ => replicas.Order()[0]), r => r == c);
    }

    /// <summary>A Gateway over two replicas: one that cannot be reached (first) and the scripted upstream.</summary>
    private Task<(WebApplication App, Uri Address)> StartWithDeadAndLiveReplicaAsync()
    {
        var dead = new Uri($"http://127.0.0.1:{ClosedPort()}");
        return GatewayFixture.StartGatewayAsync(dead, anonymous: false, settings =>
        {
            settings["Gateway:DialogueEndpoints:0"] = dead.ToString();
            settings["Gateway:DialogueEndpoints:1"] = fixture.UpstreamAddress.ToString();
        });
    }

    private static DialogueReplica Replica(string address) =>
        new(new Uri(address), ChatServices.ServiceDefaults.GrpcChannels.ForAddress(address).CreateCallInvoker());

    private static int ClosedPort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private sealed class ManualTime : TimeProvider
    {
        private long _ticks = 1_000_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
