namespace ChatServices.DialogueService.Templates;

internal sealed partial class Interpreter
{
    private Value Evaluate(Node node, Scope scope)
    {
        switch (node)
        {
            case IdentifierNode id:
                return scope.Lookup(id.Name);
            case StringLiteralNode s:
                return s.Constant;
            case NumberLiteralNode n:
                return n.Constant;
            case MemberNode member:
                return EvaluateMember(member, scope);
            case CallNode call:
                return EvaluateCall(call, scope);
            case BinaryNode binary:
                return EvaluateBinary(binary, scope);
            case UnaryNode unary:
                return EvaluateUnary(unary, scope);
            case FilterNode filter:
                return ApplyFilter(Evaluate(filter.Operand, scope), filter.Filter, scope);
            case TestNode test:
                return EvaluateTest(test, scope);
            case SelectNode select:
                return Evaluate(select.Test, scope).IsTruthy ? Evaluate(select.Lhs, scope) : UndefinedValue.Instance;
            case TernaryNode ternary:
                return Evaluate(ternary.Condition, scope).IsTruthy ? Evaluate(ternary.WhenTrue, scope) : Evaluate(ternary.WhenFalse, scope);
            case ArrayLiteralNode array:
            {
                var items = new List<Value>(array.Items.Count);
                foreach (var item in array.Items) items.Add(Evaluate(item, scope));
                return new ArrayValue(items, array.IsTuple);
            }
            case ObjectLiteralNode obj:
            {
                var entries = new OrderedDictionary<string, Value>(obj.Entries.Count, StringComparer.Ordinal);
                foreach (var (keyNode, valueNode) in obj.Entries)
                {
                    var key = Evaluate(keyNode, scope);
                    if (key is not StringValue k) throw new RenderError($"Object keys must be strings: got {key.TypeName}");
                    entries[k.Text] = Evaluate(valueNode, scope);
                }
                return new ObjectValue(entries);
            }
            case CommentNode:
                return NullValue.Instance;
            case IfNode or ForNode or SetNode or MacroNode or CallStatementNode or FilterStatementNode or BreakNode or ContinueNode:
            {
                // Statements only appear in blocks; evaluating one as an expression never happens after parsing.
                throw new RenderError("Unexpected statement in expression");
            }
            default:
                throw new RenderError($"Unknown node type: {node.GetType().Name}");
        }
    }

    private static readonly OrderedDictionary<string, Value> NoKeywords = new(StringComparer.Ordinal);

    /// <summary>Positional then keyword arguments, evaluated in that order as the reference does. The keyword
    /// dictionary is a shared empty instance when there are none; callers must not add to it.</summary>
    private (List<Value> Positional, OrderedDictionary<string, Value> Keywords) EvaluateArguments(List<Node> args, Scope scope)
    {
        var positional = new List<Value>(args.Count);
        var keywords = NoKeywords;
        foreach (var argument in args)
        {
            if (argument is SpreadNode spread)
            {
                var value = Evaluate(spread.Argument, scope);
                if (value is not ArrayValue array) throw new RenderError($"Cannot unpack non-iterable type: {value.TypeName}");
                positional.AddRange(array.Items);
            }
            else if (argument is not (KeywordArgumentNode or KeywordSpreadNode))
            {
                positional.Add(Evaluate(argument, scope));
            }
        }
        foreach (var argument in args)
        {
            if (argument is (KeywordArgumentNode or KeywordSpreadNode) && ReferenceEquals(keywords, NoKeywords))
                keywords = new OrderedDictionary<string, Value>(StringComparer.Ordinal);
            if (argument is KeywordArgumentNode kw)
            {
                if (!keywords.TryAdd(kw.Key.Name, Evaluate(kw.Value, scope)))
                    throw new RenderError($"Got multiple values for keyword argument '{kw.Key.Name}'");
            }
            else if (argument is KeywordSpreadNode spread)
            {
                var value = Evaluate(spread.Argument, scope);
                if (value is not ObjectValue mapping) throw new RenderError($"Argument after ** must be a mapping, not {value.TypeName}");
                foreach (var (k, v) in mapping.Entries)
                    if (!keywords.TryAdd(k, v)) throw new RenderError($"Got multiple values for keyword argument '{k}'");
            }
        }
        return (positional, keywords);
    }

    private Value EvaluateCall(CallNode node, Scope scope)
    {
        var (args, kwargs) = EvaluateArguments(node.Arguments, scope);
        if (kwargs.Count > 0) args.Add(new ObjectValue(kwargs, isKeywordArguments: true));
        var fn = Evaluate(node.Callee, scope);
        if (fn is not FunctionValue function)
        {
            var what = node.Callee switch
            {
                MemberNode { Computed: false, Property: IdentifierNode p } => $" ('{p.Name}')",
                IdentifierNode id => $" ('{id.Name}')",
                _ => "",
            };
            throw new RenderError($"Cannot call something that is not a function{what}: got {fn.TypeName}");
        }
        return function.Body(args, scope);
    }

    private Value EvaluateUnary(UnaryNode node, Scope scope)
    {
        var argument = Evaluate(node.Argument, scope);
        switch (node.Operator)
        {
            case "not":
                return BooleanValue.Of(!argument.IsTruthy);
            case "+" or "-":
            {
                var sign = node.Operator == "-" ? -1 : 1;
                return argument switch
                {
                    NumberValue { IsFloat: true } f => NumberValue.Float(sign * f.Number),
                    NumberValue i => NumberValue.Integer(sign * i.Number),
                    BooleanValue b => NumberValue.Integer(sign * (b.Bool ? 1 : 0)),
                    _ => throw new RenderError($"Unknown operator \"{node.Operator}\" for {argument.TypeName}"),
                };
            }
            default:
                throw new RenderError($"Unknown operator: {node.Operator}");
        }
    }

    private static bool IsNumericLike(Value v) => v is NumberValue or BooleanValue;

    private static double NumericOf(Value v) => v is BooleanValue b ? (b.Bool ? 1 : 0) : ((NumberValue)v).Number;

    private Value EvaluateBinary(BinaryNode node, Scope scope)
    {
        var op = node.Operator;
        var left = Evaluate(node.Left, scope);
        if (op == "and") return left.IsTruthy ? Evaluate(node.Right, scope) : left;
        if (op == "or") return left.IsTruthy ? left : Evaluate(node.Right, scope);

        var right = Evaluate(node.Right, scope);
        if (op == "==") return BooleanValue.Of(Equality.Loose(left, right));
        if (op == "!=") return BooleanValue.Of(!Equality.Loose(left, right));

        if (left is UndefinedValue || right is UndefinedValue)
        {
            if (right is UndefinedValue && op is "in" or "not in") return BooleanValue.Of(op == "not in");
            throw new RenderError($"Cannot perform operation {op} on undefined values");
        }
        if (left is NullValue || right is NullValue) throw new RenderError("Cannot perform operation on null values");
        if (op == "~") return Concat(left.RawString(), right.RawString());

        if (op == "**" && IsNumericLike(left) && IsNumericLike(right))
        {
            var a = NumericOf(left);
            var b = NumericOf(right);
            if (a == 0 && b < 0) throw new RenderError("0.0 cannot be raised to a negative power");
            var result = Math.Pow(a, b);
            if (!double.IsFinite(result)) throw new RenderError("Exponentiation result is not a finite real number");
            var isFloat = left.Kind == ValueKind.Float || right.Kind == ValueKind.Float || b < 0;
            return isFloat ? NumberValue.Float(result) : NumberValue.Integer(result);
        }
        if (left is NumberValue ln && right is NumberValue rn)
        {
            var a = ln.Number;
            var b = rn.Number;
            var isFloat = ln.IsFloat || rn.IsFloat;
            switch (op)
            {
                case "+": return isFloat ? NumberValue.Float(a + b) : NumberValue.Integer(a + b);
                case "-": return isFloat ? NumberValue.Float(a - b) : NumberValue.Integer(a - b);
                case "*": return isFloat ? NumberValue.Float(a * b) : NumberValue.Integer(a * b);
                case "/": return NumberValue.Float(a / b);
                case "//": return isFloat ? NumberValue.Float(Math.Floor(a / b)) : NumberValue.Integer(Math.Floor(a / b));
                case "%": return isFloat ? NumberValue.Float(a % b) : NumberValue.Integer(a % b);
                case "<": return BooleanValue.Of(a < b);
                case ">": return BooleanValue.Of(a > b);
                case ">=": return BooleanValue.Of(a >= b);
                case "<=": return BooleanValue.Of(a <= b);
            }
        }
        else if (left is ArrayValue la && right is ArrayValue ra)
        {
            if (op == "+")
            {
                if ((long)la.Items.Count + ra.Items.Count > _limits.MaxListLength)
                    throw new RenderError($"List exceeds the limit of {_limits.MaxListLength} items");
                var joined = new List<Value>(la.Items.Count + ra.Items.Count);
                joined.AddRange(la.Items);
                joined.AddRange(ra.Items);
                return new ArrayValue(joined);
            }
        }
        else if (right is ArrayValue list)
        {
            if (op is "in" or "not in")
            {
                var member = false;
                foreach (var item in list.Items)
                {
                    if (Equality.Strict(item, left))
                    {
                        member = true;
                        break;
                    }
                }
                return BooleanValue.Of(op == "in" ? member : !member);
            }
        }

        if ((left is StringValue || right is StringValue) && op == "+") return Concat(left.RawString(), right.RawString());
        if (left is StringValue ls && right is StringValue rs && op is "in" or "not in")
        {
            var contains = rs.Text.Contains(ls.Text, StringComparison.Ordinal);
            return BooleanValue.Of(op == "in" ? contains : !contains);
        }
        if (left is StringValue key && right is ObjectValue mapping && op is "in" or "not in")
        {
            var has = mapping.Entries.ContainsKey(key.Text);
            return BooleanValue.Of(op == "in" ? has : !has);
        }
        throw new RenderError($"Unknown operator \"{op}\" between {left.TypeName} and {right.TypeName}");
    }

    private StringValue Concat(string a, string b)
    {
        if ((long)a.Length + b.Length > _limits.MaxStringLength)
            throw new RenderError($"String exceeds the limit of {_limits.MaxStringLength} characters");
        return new StringValue(string.Concat(a, b));
    }

    private Value EvaluateTest(TestNode node, Scope scope)
    {
        var operand = Evaluate(node.Operand, scope);
        if (!Tests.TryGet(node.Test.Name, out var test)) throw new RenderError($"Unknown test: {node.Test.Name}");
        var result = test(operand, null);
        return BooleanValue.Of(node.Negate ? !result : result);
    }

    private Value EvaluateMember(MemberNode node, Scope scope)
    {
        var target = Evaluate(node.Target, scope);
        Value property;
        if (node.Computed)
        {
            if (node.Property is SliceNode slice) return EvaluateSlice(target, slice, scope);
            property = Evaluate(node.Property, scope);
        }
        else if (node.Property is NumberLiteralNode index)
        {
            property = NumberValue.Integer(index.Value);
        }
        else
        {
            property = new StringValue(((IdentifierNode)node.Property).Name);
        }

        Value? value;
        switch (target)
        {
            case ObjectValue obj:
                if (property is not StringValue key) throw new RenderError($"Cannot access property with non-string: got {property.TypeName}");
                value = obj.TryGetEntry(key.Text, out var found) ? found : Members.OfObject(obj, key.Text, this);
                break;
            case NamespaceValue ns:
                if (property is not StringValue nsKey) throw new RenderError($"Cannot access property with non-string: got {property.TypeName}");
                value = ns.Entries.TryGetValue(nsKey.Text, out var nsFound) ? nsFound : null;
                break;
            case ArrayValue or StringValue:
                if (property is NumberValue { IsFloat: false } n)
                {
                    var i = (long)Math.Truncate(n.Number);
                    if (target is StringValue str)
                    {
                        var at = i < 0 ? str.Text.Length + i : i;
                        value = at >= 0 && at < str.Text.Length ? new StringValue(str.Text[(int)at].ToString()) : null;
                    }
                    else
                    {
                        var items = ((ArrayValue)target).Items;
                        var at = i < 0 ? items.Count + i : i;
                        value = at >= 0 && at < items.Count ? items[(int)at] : null;
                    }
                }
                else if (property is StringValue name)
                {
                    value = target is StringValue s ? Members.OfString(s, name.Text, this) : name.Text == "length" ? NumberValue.Integer(((ArrayValue)target).Items.Count) : null;
                }
                else
                {
                    throw new RenderError($"Cannot access property with non-string/non-number: got {property.TypeName}");
                }
                break;
            default:
                if (property is not StringValue) throw new RenderError($"Cannot access property with non-string: got {property.TypeName}");
                value = null;
                break;
        }
        return value ?? UndefinedValue.Instance;
    }

    private Value EvaluateSlice(Value target, SliceNode node, Scope scope)
    {
        if (target is not (ArrayValue or StringValue)) throw new RenderError("Slice object must be an array or string");
        double? Bound(Node? n, string what)
        {
            var v = n is null ? UndefinedValue.Instance : Evaluate(n, scope);
            return v switch
            {
                UndefinedValue => null,
                NumberValue { IsFloat: false } i => i.Number,
                _ => throw new RenderError($"Slice {what} must be numeric or undefined"),
            };
        }
        var start = Bound(node.Start, "start");
        var stop = Bound(node.Stop, "stop");
        var step = Bound(node.Step, "step");
        if (target is ArrayValue array) return new ArrayValue(Slice(array.Items, start, stop, step ?? 1));
        var codePoints = JsFormat.CodePoints(((StringValue)target).Text);
        return new StringValue(string.Concat(Slice(codePoints, start, stop, step ?? 1)));
    }

    /// <summary>Python slicing as the reference implements it (a zero step yields nothing).</summary>
    internal static List<T> Slice<T>(List<T> array, double? startArg, double? stopArg, double step)
    {
        var direction = Math.Sign(step);
        double start, stop;
        var length = array.Count;
        if (direction >= 0)
        {
            start = startArg ?? 0;
            start = start < 0 ? Math.Max(length + start, 0) : Math.Min(start, length);
            stop = stopArg ?? length;
            stop = stop < 0 ? Math.Max(length + stop, 0) : Math.Min(stop, length);
        }
        else
        {
            start = startArg ?? length - 1;
            start = start < 0 ? Math.Max(length + start, -1) : Math.Min(start, length - 1);
            stop = stopArg ?? -1;
            stop = stop < -1 ? Math.Max(length + stop, -1) : Math.Min(stop, length - 1);
        }
        var result = new List<T>();
        if (direction == 0) return result;
        for (var i = start; direction * i < direction * stop; i += step) result.Add(array[(int)i]);
        return result;
    }
}
