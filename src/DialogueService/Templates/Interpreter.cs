using System.Text;

namespace ChatServices.DialogueService.Templates;

/// <summary>
/// Evaluates a parsed template for one render. It mirrors @huggingface/jinja's interpreter rule for rule
/// (scoping, truthiness, operators, loops, macros) so that prompts are identical to the reference, and
/// it enforces <see cref="TemplateLimits"/>: output and string size, total loop iterations and macro
/// calls, and macro nesting. One instance per render; not thread-safe.
/// </summary>
internal sealed partial class Interpreter
{
    private static readonly BreakSignal Break = new();
    private static readonly ContinueSignal Continue = new();

    private readonly TemplateLimits _limits;
    private readonly TimeProvider _clock;
    private readonly CancellationToken _cancellation;
    private long _steps;
    private int _depth;

    public Interpreter(TemplateLimits limits, TimeProvider clock, CancellationToken cancellation)
    {
        _limits = limits;
        _clock = clock;
        _cancellation = cancellation;
    }

    private sealed class BreakSignal : Exception;

    private sealed class ContinueSignal : Exception;

    /// <param name="expectedLength">A guess at the output's length (the prompt mostly repeats the messages), so the
    /// output buffer is sized once instead of growing chunk by chunk.</param>
    public string Run(ProgramNode program, Scope globals, int expectedLength)
    {
        var output = new StringBuilder(Math.Clamp(expectedLength, 256, 1 << 20));
        try
        {
            ExecuteBlock(program.Body, globals, output);
        }
        catch (BreakSignal)
        {
            throw new RenderError("'break' outside of a loop");
        }
        catch (ContinueSignal)
        {
            throw new RenderError("'continue' outside of a loop");
        }
        return output.ToString();
    }

    // ---- statements ------------------------------------------------------------------------------

    private void ExecuteBlock(List<Node> statements, Scope scope, StringBuilder output)
    {
        foreach (var statement in statements)
        {
            try
            {
                Execute(statement, scope, output);
            }
            catch (RenderError error) when (error.Offset < 0)
            {
                error.Offset = statement.Offset;
                throw;
            }
            if (output.Length > _limits.MaxStringLength)
                throw new RenderError($"Rendered prompt exceeds the limit of {_limits.MaxStringLength} characters");
        }
    }

    private void Execute(Node statement, Scope scope, StringBuilder output)
    {
        switch (statement)
        {
            case StringLiteralNode text:
                output.Append(text.Value);
                return;
            case IfNode node:
                ExecuteBlock(Evaluate(node.Test, scope).IsTruthy ? node.Body : node.Alternate, scope, output);
                return;
            case ForNode node:
                ExecuteFor(node, scope, output);
                return;
            case SetNode node:
                ExecuteSet(node, scope);
                return;
            case MacroNode node:
                DefineMacro(node, scope);
                return;
            case CallStatementNode node:
                Append(output, ExecuteCallStatement(node, scope));
                return;
            case FilterStatementNode node:
                Append(output, ApplyFilter(new StringValue(RenderToString(node.Body, scope)), node.Filter, scope));
                return;
            case BreakNode:
                throw Break;
            case ContinueNode:
                throw Continue;
            case CommentNode:
                return;
            default:
                Append(output, Evaluate(statement, scope));
                return;
        }
    }

    private static void Append(StringBuilder output, Value value)
    {
        if (value.IsNullish) return;
        if (value is StringValue s) output.Append(s.Text);
        else output.Append(value.Display());
    }

    private string RenderToString(List<Node> body, Scope scope)
    {
        var sb = new StringBuilder();
        ExecuteBlock(body, scope, sb);
        return sb.ToString();
    }

    private void Charge(long steps)
    {
        _steps += steps;
        if (_steps > _limits.MaxSteps)
            throw new RenderError($"Template exceeded the limit of {_limits.MaxSteps} loop iterations and macro calls");
        _cancellation.ThrowIfCancellationRequested();
    }

    private void ExecuteFor(ForNode node, Scope scope, StringBuilder output)
    {
        var loopScope = new Scope(scope);
        Node? test = null;
        Value iterable;
        if (node.Iterable is SelectNode select)
        {
            iterable = Evaluate(select.Lhs, loopScope);
            test = select.Test;
        }
        else
        {
            iterable = Evaluate(node.Iterable, loopScope);
        }

        var source = iterable switch
        {
            ArrayValue array => array.Items,
            ObjectValue mapping => mapping.KeyList().Items,
            _ => throw new RenderError($"Expected iterable or object type in for loop: got {iterable.TypeName}"),
        };
        Charge(source.Count);

        // First pass, as in the reference: check unpacking for every item and apply the loop filter.
        var items = test is null ? new List<Value>(source.Count) : [];
        foreach (var current in source)
        {
            if (node.LoopVariable is ArrayLiteralNode tuple)
            {
                if (current is not ArrayValue { IsTuple: false } unpacked)
                    throw new RenderError($"Cannot unpack non-iterable type: {current.TypeName}");
                if (tuple.Items.Count != unpacked.Items.Count)
                    throw new RenderError($"Too {(tuple.Items.Count > unpacked.Items.Count ? "few" : "many")} items to unpack");
            }
            if (test is not null)
            {
                var testScope = new Scope(loopScope);
                BindLoopVariable(node.LoopVariable, current, testScope);
                if (!Evaluate(test, testScope).IsTruthy) continue;
            }
            items.Add(current);
        }

        var noIteration = true;
        for (var i = 0; i < items.Count; i++)
        {
            Charge(1);
            loopScope.Set("loop", ObjectValue.Loop(items, i));
            BindLoopVariable(node.LoopVariable, items[i], loopScope);
            var mark = output.Length;
            try
            {
                ExecuteBlock(node.Body, loopScope, output);
            }
            catch (ContinueSignal)
            {
                // The reference drops the output of an iteration that ends in continue or break.
                output.Length = mark;
                continue;
            }
            catch (BreakSignal)
            {
                output.Length = mark;
                break;
            }
            noIteration = false;
        }

        if (noIteration) ExecuteBlock(node.DefaultBlock, loopScope, output);
    }

    private static void BindLoopVariable(Node loopVariable, Value current, Scope scope)
    {
        if (loopVariable is IdentifierNode identifier)
        {
            scope.Set(identifier.Name, current);
            return;
        }
        var tuple = (ArrayLiteralNode)loopVariable;
        var values = ((ArrayValue)current).Items;
        for (var j = 0; j < tuple.Items.Count; j++)
        {
            if (tuple.Items[j] is not IdentifierNode name)
                throw new RenderError($"Cannot unpack non-identifier type: {tuple.Items[j].GetType().Name}");
            scope.Set(name.Name, values[j]);
        }
    }

    private void ExecuteSet(SetNode node, Scope scope)
    {
        var rhs = node.Value is not null ? Evaluate(node.Value, scope) : new StringValue(RenderToString(node.Body, scope));
        switch (node.Assignee)
        {
            case IdentifierNode identifier:
                scope.Set(identifier.Name, rhs);
                break;
            case ArrayLiteralNode { IsTuple: true } tuple:
            {
                if (rhs is not ArrayValue array) throw new RenderError($"Cannot unpack non-iterable type in set: {rhs.TypeName}");
                if (array.Items.Count != tuple.Items.Count)
                    throw new RenderError($"Too {(tuple.Items.Count > array.Items.Count ? "few" : "many")} items to unpack in set");
                for (var i = 0; i < tuple.Items.Count; i++)
                {
                    if (tuple.Items[i] is not IdentifierNode name) throw new RenderError("Cannot unpack to non-identifier in set");
                    scope.Set(name.Name, array.Items[i]);
                }
                break;
            }
            case MemberNode member:
            {
                var target = Evaluate(member.Target, scope);
                if (target is not NamespaceValue ns) throw new RenderError("cannot assign attribute on non-namespace object");
                if (member.Property is not IdentifierNode property) throw new RenderError("Cannot assign to member with non-identifier property");
                ns.Entries[property.Name] = rhs;
                break;
            }
            default:
                throw new RenderError("Invalid left-hand side in set");
        }
    }

    private void DefineMacro(MacroNode node, Scope scope)
    {
        var special = SpecialMacroArguments(node.Body);
        var name = node.Name.Name;
        scope.Set(name, new FunctionValue(name, (args, caller) =>
        {
            var macroScope = new Scope(caller);
            return Invoke(() =>
            {
                BindMacroArguments($"'{name}'", node.Parameters, special, args, macroScope);
                return new StringValue(RenderToString(node.Body, macroScope));
            });
        }));
    }

    private Value Invoke(Func<Value> call)
    {
        Charge(1);
        if (++_depth > _limits.MaxDepth)
            throw new RenderError($"Macro calls nested deeper than {_limits.MaxDepth} levels");
        try
        {
            return call();
        }
        finally
        {
            _depth--;
        }
    }

    private Value ExecuteCallStatement(CallStatementNode node, Scope scope)
    {
        var parameters = node.CallerParameters ?? [];
        var special = SpecialMacroArguments(node.Body);
        var callerFunction = new FunctionValue("caller", (callerArgs, _) =>
        {
            var callBlockScope = new Scope(scope);
            return Invoke(() =>
            {
                BindMacroArguments("None", parameters, special, callerArgs, callBlockScope);
                return new StringValue(RenderToString(node.Body, callBlockScope));
            });
        });
        var (args, kwargs) = EvaluateArguments(node.Call.Arguments, scope);
        args.Add(new ObjectValue(kwargs, isKeywordArguments: true));
        var fn = Evaluate(node.Call.Callee, scope);
        if (fn is not FunctionValue function) throw new RenderError($"Cannot call something that is not a function: got {fn.TypeName}");
        var callScope = new Scope(scope);
        callScope.Set("caller", callerFunction);
        return function.Body(args, callScope);
    }

    private static (bool Kwargs, bool Varargs) SpecialMacroArguments(List<Node> body)
    {
        // The reference collects kwargs/varargs only when the body reads them; a read anywhere is close enough
        // for chat templates, which never declare variables of those names.
        var kwargs = false;
        var varargs = false;
        void Visit(Node? node)
        {
            switch (node)
            {
                case null:
                    return;
                case IdentifierNode id:
                    kwargs |= id.Name == "kwargs";
                    varargs |= id.Name == "varargs";
                    return;
                case IfNode n: Visit(n.Test); n.Body.ForEach(Visit); n.Alternate.ForEach(Visit); return;
                case ForNode n: Visit(n.Iterable); n.Body.ForEach(Visit); n.DefaultBlock.ForEach(Visit); return;
                case SetNode n: Visit(n.Value); n.Body.ForEach(Visit); return;
                case CallStatementNode n: Visit(n.Call); n.Body.ForEach(Visit); return;
                case FilterStatementNode n: Visit(n.Filter); n.Body.ForEach(Visit); return;
                case ArrayLiteralNode n: n.Items.ForEach(Visit); return;
                case ObjectLiteralNode n: foreach (var (k, v) in n.Entries) { Visit(k); Visit(v); } return;
                case MemberNode n: Visit(n.Target); if (n.Computed) Visit(n.Property); return;
                case CallNode n: Visit(n.Callee); n.Arguments.ForEach(Visit); return;
                case BinaryNode n: Visit(n.Left); Visit(n.Right); return;
                case UnaryNode n: Visit(n.Argument); return;
                case FilterNode n: Visit(n.Operand); if (n.Filter is CallNode c) c.Arguments.ForEach(Visit); return;
                case TestNode n: Visit(n.Operand); return;
                case SelectNode n: Visit(n.Lhs); Visit(n.Test); return;
                case TernaryNode n: Visit(n.Condition); Visit(n.WhenTrue); Visit(n.WhenFalse); return;
                case SliceNode n: Visit(n.Start); Visit(n.Stop); Visit(n.Step); return;
                case KeywordArgumentNode n: Visit(n.Value); return;
                case SpreadNode n: Visit(n.Argument); return;
                case KeywordSpreadNode n: Visit(n.Argument); return;
            }
        }
        body.ForEach(Visit);
        return (kwargs, varargs);
    }

    private void BindMacroArguments(string displayName, List<Node> parameters, (bool Kwargs, bool Varargs) special, List<Value> args, Scope scope)
    {
        var positional = args;
        var keywords = new OrderedDictionary<string, Value>(StringComparer.Ordinal);
        if (positional.Count > 0 && positional[^1] is ObjectValue { IsKeywordArguments: true } kw)
        {
            foreach (var (k, v) in kw.Entries) keywords[k] = v;
            positional = positional.GetRange(0, positional.Count - 1);
        }

        var pendingDefaults = new List<(string Name, Node Default)>();
        for (var i = 0; i < parameters.Count; i++)
        {
            var (name, defaultValue) = parameters[i] switch
            {
                IdentifierNode id => (id.Name, (Node?)null),
                KeywordArgumentNode k => (k.Key.Name, k.Value),
                _ => throw new RenderError("Invalid macro parameter"),
            };
            var value = i < positional.Count ? positional[i] : null;
            if (value is null && keywords.Remove(name, out var byName)) value = byName;
            if (value is null && defaultValue is not null) pendingDefaults.Add((name, defaultValue));
            scope.Set(name, value ?? UndefinedValue.Instance);
        }

        if (special.Kwargs) scope.Set("kwargs", new ObjectValue(keywords));
        else if (keywords.Count > 0)
            throw new RenderError($"macro {displayName} takes no keyword argument '{keywords.GetAt(0).Key}'");
        if (special.Varargs)
            scope.Set("varargs", new ArrayValue(positional.Count > parameters.Count ? positional.GetRange(parameters.Count, positional.Count - parameters.Count) : []));
        else if (positional.Count > parameters.Count)
            throw new RenderError($"macro {displayName} takes not more than {parameters.Count} argument(s)");

        foreach (var (name, defaultValue) in pendingDefaults) scope.Set(name, Evaluate(defaultValue, scope));
    }

    // ---- global functions that need the render state ------------------------------------------------

    internal Value Range(List<Value> args, Scope _)
    {
        double Number(int i) => args[i] switch
        {
            NumberValue n => n.Number,
            BooleanValue b => b.Bool ? 1 : 0,
            var other => throw new RenderError($"range() arguments must be numbers, got {other.TypeName}"),
        };
        var count = args.Count;
        if (count > 0 && args[^1] is ObjectValue { IsKeywordArguments: true }) count--;
        if (count == 0) throw new RenderError("range() expects at least 1 argument");
        double start = 0, stop, step = 1;
        if (count == 1) stop = Number(0);
        else
        {
            start = Number(0);
            stop = Number(1);
            if (count > 2) step = Number(2);
        }
        if (step == 0) throw new RenderError("range() step must not be zero");
        var length = step > 0 ? Math.Ceiling((stop - start) / step) : Math.Ceiling((start - stop) / -step);
        if (double.IsNaN(length) || length < 0) length = 0;
        if (length > _limits.MaxListLength) throw new RenderError($"range() of {length} items exceeds the limit of {_limits.MaxListLength}");
        Charge((long)length);
        var result = new List<Value>((int)length);
        // Count-bounded (the reference adds step repeatedly, which is the same for integers below 2^53 but
        // would never end where start + step == start).
        for (var k = 0L; k < (long)length; k++)
        {
            var value = start + k * step;
            if (step > 0 ? !(value < stop) : !(value > stop)) break;
            result.Add(RangeItem(value));
        }
        return new ArrayValue(result);
    }

    private static NumberValue RangeItem(double i) => i == Math.Floor(i) ? NumberValue.Integer(i) : NumberValue.Float(i);

    internal Value StrftimeNow(List<Value> args, Scope _)
    {
        var format = args.Count > 0 && args[0] is StringValue s ? s.Text : args.Count > 0 ? args[0].RawString() : "undefined";
        return new StringValue(Builtins.Strftime(_clock.GetLocalNow(), format));
    }
}
