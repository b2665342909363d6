using ChatServices.DialogueService.Inference;

namespace ChatServices.DialogueService.Tests.Inference;

public sealed class InferenceEndpointResolverTests
{
    [Fact]
    public async Task Ip_literals_are_kept_and_names_become_one_replica_per_address()
    {
        Uri[] configured = [new("http://10.2.0.9:50052"), new("http://localhost:50052")];
        var picker = new InferenceEndpointPicker([]);
        var resolved = await new InferenceEndpointResolver(configured, picker).RefreshAsync(CancellationToken.None);

        Assert.Contains(new Uri("http://10.2.0.9:50052"), resolved);
        Assert.Contains(resolved, u => u.Host == "127.0.0.1" && u.Port == 50052);
        Assert.Equal(resolved.Count, picker.Endpoints.Count);
    }

    [Fact]
    public async Task A_name_that_does_not_resolve_leaves_the_last_known_replicas_in_place()
    {
        var picker = new InferenceEndpointPicker([new Uri("http://10.2.0.1:50052")]);
        var resolved = await new InferenceEndpointResolver([new Uri("http://no-such-replica.invalid:50052")], picker)
            .RefreshAsync(CancellationToken.None);

        Assert.Empty(resolved);
        Assert.Equal(new Uri("http://10.2.0.1:50052"), Assert.Single(picker.Endpoints).Address);
    }
}
