namespace ChatServices.ServiceDefaults;

/// <summary>
/// Whether this process is ready to take traffic. A service starts not ready and calls <see cref="MarkReady"/>
/// once what it serves is loaded (a model, a tokenizer, a database schema); <see cref="MarkNotReady"/> takes it
/// out of rotation again (draining on shutdown, a lost dependency). Liveness is separate: a process that is
/// alive but not ready is left running and simply receives no traffic.
/// </summary>
public sealed class Readiness
{
    private volatile string? _notReadyReason = "starting";

    /// <summary>Raised after every change, with the new state.</summary>
    public event Action<bool>? Changed;

    public bool IsReady => _notReadyReason is null;

    /// <summary>Why the service is not ready, or null when it is.</summary>
    public string? NotReadyReason => _notReadyReason;

    public void MarkReady()
    {
        _notReadyReason = null;
        Changed?.Invoke(true);
    }

    public void MarkNotReady(string reason)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        _notReadyReason = reason;
        Changed?.Invoke(false);
    }
}
