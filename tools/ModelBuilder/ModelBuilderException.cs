namespace ChatServices.ModelBuilder;

/// <summary>
/// A conversion that cannot proceed for a reason the user can act on (unsupported architecture, missing tensor,
/// shape mismatch, bad option). The command line prints its message without a stack trace.
/// </summary>
public sealed class ModelBuilderException(string message, Exception? inner = null) : Exception(message, inner);
