using ChatServices.ServiceDefaults;
using Grpc.Core.Interceptors;
using ChatServices.Protos.Chat.V1;

namespace ChatServices.Gateway.Upstream;

/// <summary>
/// The equivalent DialogueService replicas the Gateway spreads its calls over (<c>Gateway:DialogueEndpoints</c>,
/// or the one <c>Gateway:DialogueEndpoint</c>): one client with its own channel per replica, so that a dead
/// replica's connections never hold up another's. Each call tries them in <see cref="Order"/>: round-robin, with
/// replicas that were unavailable (unreachable, or answering UNAVAILABLE) in the last <see cref="CoolDown"/>
/// moved to the end (they are still tried when nothing else is left). Thread-safe.
/// </summary>
public sealed class DialogueReplicas
{
    /// <summary>How long a replica that was unavailable is tried only after the others.</summary>
    public static readonly TimeSpan CoolDown = TimeSpan.FromSeconds(5);

    private readonly DialogueReplica[] _replicas;
    private readonly TimeProvider _time;
    private uint _next;

    public DialogueReplicas(IReadOnlyList<DialogueReplica> replicas, TimeProvider time)
    {
        if (replicas.Count == 0) throw new ArgumentException("At least one DialogueService endpoint is needed.", nameof(replicas));
        _replicas = [.. replicas];
        _time = time;
    }

    /// <summary>
    /// One replica per endpoint, each on a channel of its own; every call carries <paramref name="credential"/> and,
    /// when <paramref name="forwardedKeyId"/> names one, the end user's key in <c>chat-key-id</c> metadata (which
    /// DialogueService honours from a <c>service</c> caller only, to apply that key's limits). <paramref name="tls"/>:
    /// the authority and client certificate for <c>https://</c> endpoints.
    /// </summary>
    public static DialogueReplicas ForEndpoints(IEnumerable<string> endpoints, TimeProvider time, string? credential = null, Func<string?>? forwardedKeyId = null,
        TlsOptions? tls = null) =>
        new([.. endpoints.Select(e => new DialogueReplica(new Uri(e), GrpcChannels.ForAddress(e, tls: tls).WithCredential(credential).Intercept(metadata =>
        {
            if (forwardedKeyId?.Invoke() is { } keyId) metadata.Add("chat-key-id", keyId);
            return metadata;
        })))], time);

    public IReadOnlyList<DialogueReplica> All => _replicas;

    /// <summary>The replicas in the order this call should try them (every replica exactly once).</summary>
    public DialogueReplica[] Order()
    {
        var count = _replicas.Length;
        var order = new DialogueReplica[count];
        if (count == 1)
        {
            order[0] = _replicas[0];
            return order;
        }
        var start = (int)(Interlocked.Increment(ref _next) % (uint)count);
        int healthy = 0, cooling = count;
        for (var i = 0; i < count; i++)
        {
            var replica = _replicas[(start + i) % count];
            // Cooling replicas fill the array from the back; reversed below to keep their round-robin order.
            if (IsCooling(replica)) order[--cooling] = replica;
            else order[healthy++] = replica;
        }
        Array.Reverse(order, cooling, count - cooling);
        return order;
    }

    public void ReportUnavailable(DialogueReplica replica) => Volatile.Write(ref replica.UnavailableAt, _time.GetTimestamp());

    public void ReportAvailable(DialogueReplica replica) => Volatile.Write(ref replica.UnavailableAt, 0);

    private bool IsCooling(DialogueReplica replica)
    {
        var at = Volatile.Read(ref replica.UnavailableAt);
        return at != 0 && _time.GetElapsedTime(at) < CoolDown;
    }
}

/// <summary>One DialogueService replica and its clients (chat.v1.Dialogue, and chat.v1.Admin for key validation).</summary>
public sealed class DialogueReplica(Uri endpoint, Grpc.Core.CallInvoker calls)
{
    public Uri Endpoint { get; } = endpoint;

    public Dialogue.DialogueClient Client { get; } = new(calls);

    public Admin.AdminClient Admin { get; } = new(calls);

    // Timestamp (TimeProvider ticks) of its last UNAVAILABLE; 0 once it served a call again.
    internal long UnavailableAt;
}
