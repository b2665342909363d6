using Grpc.Core;

namespace ChatServices.Client;

/// <summary>
/// A call that DialogueService refused or could not serve, with the gRPC status it answered
/// (<see cref="StatusCode"/>) and the original <see cref="RpcException"/> as the inner exception. Bad arguments
/// surface as <see cref="ArgumentException"/>, deadlines as <see cref="TimeoutException"/> and the caller's own
/// cancellation as <see cref="OperationCanceledException"/> instead.
/// </summary>
public sealed class ChatServicesException : Exception
{
    /// <summary>Creates the exception for a status DialogueService answered.</summary>
    public ChatServicesException(StatusCode statusCode, string message, Exception? innerException = null)
        : base(message, innerException) => StatusCode = statusCode;

    /// <summary>The gRPC status: NOT_FOUND, UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAVAILABLE…</summary>
    public StatusCode StatusCode { get; }

    /// <summary>The .NET exception a caller of the library sees for a failed call.</summary>
    internal static Exception From(RpcException e, CancellationToken cancellationToken)
    {
        var detail = e.Status.Detail;
        return e.StatusCode switch
        {
            StatusCode.Cancelled when cancellationToken.IsCancellationRequested =>
                new OperationCanceledException("The call was cancelled by the caller.", e, cancellationToken),
            StatusCode.DeadlineExceeded => new TimeoutException($"DialogueService did not answer within the call's deadline: {detail}", e),
            StatusCode.InvalidArgument => new ArgumentException($"DialogueService refused the request: {detail}", e),
            StatusCode.Unauthenticated => new ChatServicesException(e.StatusCode,
                $"DialogueService did not accept the call's credentials (set ChatServicesClientOptions.ApiKey or AccessTokenProvider): {detail}", e),
            StatusCode.PermissionDenied => new ChatServicesException(e.StatusCode, $"The caller may not do this: {detail}", e),
            StatusCode.NotFound => new ChatServicesException(e.StatusCode, $"Not found: {detail}", e),
            StatusCode.ResourceExhausted => new ChatServicesException(e.StatusCode, $"DialogueService is at capacity; try again later: {detail}", e),
            StatusCode.Unavailable => new ChatServicesException(e.StatusCode, $"DialogueService is unavailable: {detail}", e),
            _ => new ChatServicesException(e.StatusCode, $"DialogueService answered {e.StatusCode}: {detail}", e),
        };
    }
}
