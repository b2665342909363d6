namespace ChatServices.InferenceService.Engine.Constraints;

/// <summary>A formal language a request's output must belong to (inference.proto <c>Constraint</c>).</summary>
public abstract record ConstraintSpec
{
    /// <summary>The field that names this constraint in errors, as inference.proto spells it.</summary>
    public abstract string Field { get; }

    /// <summary>Identifies the constraint's content, for the compile cache.</summary>
    internal abstract string CacheKey { get; }
}

/// <summary>Instances of a JSON Schema document (JSON text), written compactly.</summary>
public sealed record JsonSchemaConstraint(string Schema) : ConstraintSpec
{
    public override string Field => "constraint.json_schema";
    internal override string CacheKey => "json_schema\n" + Schema;
}

/// <summary>Any JSON object.</summary>
public sealed record JsonObjectConstraint : ConstraintSpec
{
    public override string Field => "constraint.json_object";
    internal override string CacheKey => "json_object";
}

/// <summary>Text matching a regular expression in full.</summary>
public sealed record RegexConstraint(string Pattern) : ConstraintSpec
{
    public override string Field => "constraint.regex";
    internal override string CacheKey => "regex\n" + Pattern;
}

/// <summary>A GBNF grammar, with rules that may be given as JSON Schemas instead.</summary>
public sealed record GrammarConstraint(string Gbnf, IReadOnlyDictionary<string, string> JsonSchemaRules) : ConstraintSpec
{
    public override string Field => "constraint.grammar";
    internal override string CacheKey =>
        "grammar\n" + Gbnf + string.Concat(JsonSchemaRules.OrderBy(r => r.Key, StringComparer.Ordinal).Select(r => $"\n\0{r.Key}\0{r.Value}"));
}
