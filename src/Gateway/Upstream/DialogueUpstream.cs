using System.Runtime.CompilerServices;
using ChatServices.Gateway.Limits;
using ChatServices.Gateway.OpenAi;
using ChatServices.Protos.Chat.V1;
using ChatServices.ServiceDefaults;
using Grpc.Core;
using Microsoft.Extensions.Options;

namespace ChatServices.Gateway.Upstream;

/// <summary>
/// The Gateway's one door to DialogueService (chat.v1.Dialogue over gRPC). Every gRPC failure leaves here as an
/// <see cref="ApiException"/> with the HTTP status it means: INVALID_ARGUMENT → 400, NOT_FOUND → 404,
/// RESOURCE_EXHAUSTED → 429, UNAVAILABLE → 503, DEADLINE_EXCEEDED → 504, anything else → 502. The served model
/// (GetModel) is cached for a minute.
/// <para>
/// With several replicas (<see cref="DialogueReplicas"/>), a call that finds its replica unreachable (UNAVAILABLE,
/// 503) moves on to the next: unary calls at any point, a chat only before its first event (ChatStarted), because
/// once a reply has begun streaming nobody can take it over. DialogueService writes nothing before it has rendered
/// the prompt, so a chat refused as UNAVAILABLE before that event is safe to send elsewhere; a replica that dies
/// after storing the user message but before sending that event can leave the message stored twice (never lost).
/// </para>
/// </summary>
public sealed class DialogueUpstream(DialogueReplicas replicas, IOptions<GatewayOptions> options, TimeProvider time, DrainDeadline drain)
{
    private static readonly TimeSpan ModelCacheLifetime = TimeSpan.FromMinutes(1);
    private readonly TimeSpan _timeout = options.Value.UpstreamTimeout;
    // Replaced whole, never mutated: readers on any thread see one consistent entry.
    private volatile CachedModel? _model;

    public async Task<ModelCard> GetModelAsync(CancellationToken cancellationToken)
    {
        if (_model is { } cached && time.GetElapsedTime(cached.FetchedAt) < ModelCacheLifetime) return cached.Model;
        try
        {
            var model = await UnaryAsync((client, ct) => client.GetModelAsync(new GetModelRequest(), deadline: Deadline(), cancellationToken: ct), cancellationToken);
            _model = new CachedModel(model, time.GetTimestamp());
            return model;
        }
        catch (ApiException) when (_model is { } stale)
        {
            return stale.Model; // DialogueService is briefly unreachable: the model it served a moment ago still stands.
        }
    }

    /// <summary>The served model, if <paramref name="requested"/> names it: 400 when absent, 404 when another.</summary>
    public async Task<ModelCard> RequireModelAsync(string? requested, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(requested)) throw ApiException.InvalidRequest("'model' is required.", "model");
        var model = await GetModelAsync(cancellationToken);
        return requested == model.Id ? model : throw ApiException.ModelNotFound(requested);
    }

    /// <summary>
    /// Starts a chat and waits for its first event, so that a refusal (bad field, overload, no replica) is still an
    /// HTTP status. Cancelling <paramref name="cancellationToken"/> (the client went away) cancels the upstream call.
    /// The call owns <paramref name="charge"/> from here on and settles it when disposed.
    /// </summary>
    public async Task<ChatCall> StartChatAsync(ChatRequest request, TokenCharge charge, CancellationToken cancellationToken)
    {
        var order = replicas.Order();
        ApiException? reason = null;
        for (var attempt = 0; ; attempt++)
        {
            var replica = order[attempt];
            var events = ChatEventsAsync(replica.Client, request, drain, cancellationToken).GetAsyncEnumerator(cancellationToken);
            try
            {
                if (!await events.MoveNextAsync() || events.Current.EventCase != ChatEvent.EventOneofCase.Started)
                {
                    throw new ApiException(StatusCodes.Status502BadGateway, "server_error", "DialogueService ended the chat without starting it.");
                }
                replicas.ReportAvailable(replica);
                return new ChatCall(events, events.Current.Started, charge);
            }
            catch (ApiException e) when (e.StatusCode == StatusCodes.Status503ServiceUnavailable && attempt + 1 < order.Length)
            {
                replicas.ReportUnavailable(replica);
                reason = MoreTelling(reason, e);
                await events.DisposeAsync();
            }
            catch (Exception e)
            {
                var unavailable = e is ApiException { StatusCode: StatusCodes.Status503ServiceUnavailable };
                if (unavailable) replicas.ReportUnavailable(replica);
                charge.Settle(0); // refused before generating: nothing was used
                charge.Dispose();
                await events.DisposeAsync();
                if (unavailable && reason is not null) throw MoreTelling(reason, (ApiException)e);
                throw;
            }
        }
    }

    public Task<Conversation> CreateConversationAsync(CreateConversationRequest request, CancellationToken cancellationToken) =>
        UnaryAsync((client, ct) => client.CreateConversationAsync(request, deadline: Deadline(), cancellationToken: ct), cancellationToken);

    public Task<ListConversationsResponse> ListConversationsAsync(ListConversationsRequest request, CancellationToken cancellationToken) =>
        UnaryAsync((client, ct) => client.ListConversationsAsync(request, deadline: Deadline(), cancellationToken: ct), cancellationToken);

    public Task<Conversation> GetConversationAsync(GetConversationRequest request, CancellationToken cancellationToken) =>
        UnaryAsync((client, ct) => client.GetConversationAsync(request, deadline: Deadline(), cancellationToken: ct), cancellationToken);

    public Task<Conversation> RenameConversationAsync(RenameConversationRequest request, CancellationToken cancellationToken) =>
        UnaryAsync((client, ct) => client.RenameConversationAsync(request, deadline: Deadline(), cancellationToken: ct), cancellationToken);

    public Task<Conversation> SetSystemPromptAsync(SetSystemPromptRequest request, CancellationToken cancellationToken) =>
        UnaryAsync((client, ct) => client.SetSystemPromptAsync(request, deadline: Deadline(), cancellationToken: ct), cancellationToken);

    public Task<DeleteConversationResponse> DeleteConversationAsync(DeleteConversationRequest request, CancellationToken cancellationToken) =>
        UnaryAsync((client, ct) => client.DeleteConversationAsync(request, deadline: Deadline(), cancellationToken: ct), cancellationToken);

    private static async IAsyncEnumerable<ChatEvent> ChatEventsAsync(
        Dialogue.DialogueClient client, ChatRequest request, DrainDeadline drain, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        // No deadline on the stream itself: a long reply is not a failure. The client going away cancels it, and so
        // does the end of the drain when the Gateway is stopping (the caller then gets an error saying so).
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, drain.Elapsed);
        using var call = client.Chat(request, cancellationToken: stop.Token);
        var stream = call.ResponseStream;
        while (true)
        {
            try
            {
                if (!await stream.MoveNext(stop.Token)) yield break;
            }
            catch (Exception) when (drain.Elapsed.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
            {
                throw ApiException.Unavailable(drain.Failure("The gateway", "the reply").Status.Detail);
            }
            catch (Exception e) when (Map(e, cancellationToken) is { } error)
            {
                throw error;
            }
            yield return stream.Current;
        }
    }

    private DateTime Deadline() => time.GetUtcNow().UtcDateTime + _timeout;

    /// <summary>
    /// What the key with this SHA-256 stands for (chat.v1.Admin/ValidateKey), or null when DialogueService knows no
    /// active key with it. Called with the Gateway's own service credential.
    /// </summary>
    public async Task<ApiKey?> ValidateKeyAsync(string keySha256, CancellationToken cancellationToken)
    {
        var response = await UnaryAsync((replica, ct) => replica.Admin.ValidateKeyAsync(
            new ValidateKeyRequest { KeySha256 = keySha256 }, deadline: Deadline(), cancellationToken: ct), cancellationToken);
        return response.Valid ? response.Key : null;
    }

    public Task<GetUsageResponse> GetUsageAsync(GetUsageRequest request, CancellationToken cancellationToken) =>
        UnaryAsync((replica, ct) => replica.Admin.GetUsageAsync(request, deadline: Deadline(), cancellationToken: ct), cancellationToken);

    private Task<T> UnaryAsync<T>(Func<Dialogue.DialogueClient, CancellationToken, AsyncUnaryCall<T>> start, CancellationToken cancellationToken) =>
        UnaryAsync((replica, ct) => start(replica.Client, ct), cancellationToken);

    private async Task<T> UnaryAsync<T>(Func<DialogueReplica, CancellationToken, AsyncUnaryCall<T>> start, CancellationToken cancellationToken)
    {
        var order = replicas.Order();
        ApiException? reason = null;
        for (var attempt = 0; ; attempt++)
        {
            var replica = order[attempt];
            try
            {
                using var call = start(replica, cancellationToken);
                var response = await call.ResponseAsync;
                replicas.ReportAvailable(replica);
                return response;
            }
            catch (Exception e) when (Map(e, cancellationToken) is { } error)
            {
                if (error.StatusCode != StatusCodes.Status503ServiceUnavailable) throw error;
                replicas.ReportUnavailable(replica);
                reason = MoreTelling(reason, error);
                if (attempt + 1 == order.Length) throw reason;
            }
        }
    }

    /// <summary>The HTTP error a failed upstream call means; null when the caller's own cancellation ended it.</summary>
    internal static ApiException? Map(Exception e, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return null;
        return e switch
        {
            RpcException rpc => rpc.StatusCode switch
            {
                StatusCode.InvalidArgument or StatusCode.OutOfRange => ApiException.InvalidRequest(
                    rpc.Status.Detail.StartsWith("settings.", StringComparison.Ordinal) ? rpc.Status.Detail[9..] : rpc.Status.Detail, ParamFromDetail(rpc.Status.Detail)),
                StatusCode.NotFound => ApiException.NotFound(rpc.Status.Detail),
                // A key's rate limit in DialogueService (shared by every replica) says when to come back.
                StatusCode.ResourceExhausted when rpc.Trailers.GetValue("retry-after") is { } retryAfter =>
                    ApiException.RateLimited("requests", rpc.Status.Detail, int.TryParse(retryAfter, out var seconds) ? seconds : 60),
                StatusCode.ResourceExhausted => new ApiException(StatusCodes.Status429TooManyRequests, "server_overloaded",
                    rpc.Status.Detail.Length > 0 ? rpc.Status.Detail : "The model is at capacity. Try again shortly.", null, "server_overloaded") { RetryAfterSeconds = 1 },
                StatusCode.Unavailable => ApiException.Unavailable("DialogueService is unavailable: " + rpc.Status.Detail,
                    unreachable: IsConnectionFailure(rpc)),
                StatusCode.DeadlineExceeded => new ApiException(StatusCodes.Status504GatewayTimeout, "server_error",
                    "DialogueService did not answer in time.", null, "upstream_timeout"),
                _ => new ApiException(StatusCodes.Status502BadGateway, "server_error",
                    $"DialogueService failed: {rpc.StatusCode} {rpc.Status.Detail}", null, "upstream_error"),
            },
            HttpRequestException or IOException => ApiException.Unavailable("DialogueService is unavailable: " + e.Message),
            _ => null,
        };
    }

    /// <summary>True when the call never reached a DialogueService process: its connection could not be made
    /// (grpc-dotnet's "Error connecting to subchannel.", with the socket error as the status's debug exception).</summary>
    private static bool IsConnectionFailure(RpcException rpc)
    {
        for (var e = rpc.Status.DebugException ?? rpc.InnerException; e is not null; e = e.InnerException)
        {
            if (e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } or System.Net.Sockets.SocketException) return true;
        }
        return false;
    }

    /// <summary>
    /// When every replica is unavailable, the reason worth reporting: the first from a replica that was reached (it
    /// says why it cannot serve, e.g. its database is down) over "connection refused" from one that is gone.
    /// </summary>
    private static ApiException MoreTelling(ApiException? earlier, ApiException later) =>
        earlier is null || (earlier.UpstreamUnreachable && !later.UpstreamUnreachable) ? later : earlier;

    private sealed record CachedModel(ModelCard Model, long FetchedAt);

    // DialogueService names the field first ("settings.temperature: must be …"); pass it on as OpenAI's param.
    private static string? ParamFromDetail(string detail)
    {
        var colon = detail.IndexOf(':');
        if (colon <= 0 || colon > 64) return null;
        var name = detail.AsSpan(0, colon);
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '[' or ']')) return null;
        }
        return name.StartsWith("settings.") ? name[9..].ToString() : name.ToString();
    }
}
