namespace ChatServices.DialogueService.Templates;

/// <summary>
/// A variable scope. As in the reference, a for loop opens a scope that its body's <c>set</c> statements
/// write to (so they persist across iterations but not past the loop), and a macro runs in a child of
/// its caller's scope. Every scope implicitly holds the <c>namespace</c> constructor.
/// </summary>
internal sealed class Scope(Scope? parent)
{
    private Dictionary<string, Value>? _variables;

    public Scope? Parent { get; } = parent;

    public void Set(string name, Value value) => (_variables ??= new Dictionary<string, Value>(StringComparer.Ordinal))[name] = value;

    public bool TryDeclare(string name, Value value)
    {
        _variables ??= new Dictionary<string, Value>(StringComparer.Ordinal);
        if (name == "namespace" || _variables.ContainsKey(name)) return false;
        _variables[name] = value;
        return true;
    }

    public Value Lookup(string name)
    {
        if (name == "namespace")
            return _variables is not null && _variables.TryGetValue(name, out var own) ? own : Builtins.Namespace;
        for (var scope = this; scope is not null; scope = scope.Parent)
            if (scope._variables is not null && scope._variables.TryGetValue(name, out var value)) return value;
        return UndefinedValue.Instance;
    }
}
