using ChatServices.DialogueService.Inference;

namespace ChatServices.DialogueService.Tests.Inference;

public sealed class InferenceEndpointPickerTests
{
    private static readonly Uri[] Three =
    [
        new("http://10.1.0.1:50052"), new("http://10.1.0.2:50052"), new("http://10.1.0.3:50052"),
    ];

    [Fact]
    public void Without_a_conversation_the_least_loaded_replica_is_picked()
    {
        var picker = new InferenceEndpointPicker(Three);
        using var a = picker.Endpoints[0].Track();
        using var b = picker.Endpoints[1].Track();
        Assert.Same(picker.Endpoints[2], picker.Pick(null));
    }

    [Fact]
    public void A_conversation_goes_to_the_same_replica_from_any_picker()
    {
        var first = new InferenceEndpointPicker(Three);
        var second = new InferenceEndpointPicker(Three.Reverse());
        for (var i = 0; i < 50; i++)
        {
            var id = "conv-" + i;
            Assert.Equal(first.Pick(id)!.Address, second.Pick(id)!.Address);
            Assert.Equal(first.Pick(id)!.Address, first.Pick(id)!.Address);
        }
    }

    [Fact]
    public void Conversations_spread_over_the_replicas()
    {
        var picker = new InferenceEndpointPicker(Three);
        var counts = new Dictionary<Uri, int>();
        for (var i = 0; i < 3000; i++)
        {
            var address = picker.Pick(Guid.NewGuid().ToString())!.Address;
            counts[address] = counts.GetValueOrDefault(address) + 1;
        }
        Assert.Equal(3, counts.Count);
        Assert.All(counts.Values, c => Assert.InRange(c, 800, 1200));
    }

    [Fact]
    public void Affinity_yields_to_the_least_loaded_replica_beyond_the_slack()
    {
        var picker = new InferenceEndpointPicker(Three, affinitySlack: 2);
        var home = picker.Pick("conversation-7")!;
        var load = new List<IDisposable> { home.Track(), home.Track() };
        Assert.Same(home, picker.Pick("conversation-7"));   // 2 above the others: within the slack
        load.Add(home.Track());
        Assert.NotSame(home, picker.Pick("conversation-7")); // 3 above: too busy
        load.ForEach(l => l.Dispose());
        Assert.Same(home, picker.Pick("conversation-7"));
    }

    [Fact]
    public void Removing_a_replica_moves_only_the_conversations_it_held()
    {
        var picker = new InferenceEndpointPicker(Three);
        var before = Enumerable.Range(0, 300).ToDictionary(i => i, i => picker.Pick("c" + i)!.Address);
        picker.Update(Three.Take(2));
        foreach (var (i, address) in before)
            if (address != Three[2]) Assert.Equal(address, picker.Pick("c" + i)!.Address);
    }

    [Fact]
    public void Excluded_and_unusable_replicas_are_skipped_and_none_left_gives_null()
    {
        var picker = new InferenceEndpointPicker(Three);
        var e = picker.Endpoints;
        Assert.Same(e[2], picker.Pick("x", isUsable: ep => ep != e[0], exclude: [e[1]]));
        Assert.Null(picker.Pick("x", isUsable: _ => false));
    }

    [Fact]
    public void Outstanding_counts_survive_an_update_and_release_once()
    {
        var picker = new InferenceEndpointPicker(Three);
        var lease = picker.Endpoints[1].Track();
        picker.Update(Three);
        Assert.Equal(1, picker.Endpoints[1].Outstanding);
        lease.Dispose();
        lease.Dispose();
        Assert.Equal(0, picker.Endpoints[1].Outstanding);
    }
}
