namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>
/// A constraint that cannot be compiled: bad syntax (with its position) or an unsupported feature (named).
/// <see cref="Field"/> is the request field as inference.proto spells it, e.g. "constraint.json_schema".
/// </summary>
public sealed class ConstraintException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}
