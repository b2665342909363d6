namespace ChatServices.DialogueService.Templates;

/// <summary>
/// Recursive-descent parser from tokens to <see cref="ProgramNode"/>, with the grammar and precedence of
/// @huggingface/jinja (lowest first): ternary / select, or, and, not, comparison and membership, additive,
/// multiplicative, power, test (<c>is</c>), filter (<c>|</c>), unary sign, call and member, primary.
/// Every error is a <see cref="TemplateException"/> carrying the line and column of the offending token;
/// nesting is bounded so that a hostile template cannot exhaust the stack.
/// </summary>
internal sealed class Parser
{
    private const int MaxNesting = 128;

    private readonly List<Token> _tokens;
    private readonly string _source;
    private readonly Token _end;
    private int _current;
    private int _depth;

    private Parser(List<Token> tokens, string source)
    {
        _tokens = tokens;
        _source = source;
        _end = new Token("", TokenKind.EndOfInput, source.Length);
    }

    public static ProgramNode Parse(List<Token> tokens, string source)
    {
        var parser = new Parser(tokens, source);
        var body = new List<Node>();
        while (parser._current < tokens.Count) body.Add(parser.ParseAny());
        return new ProgramNode(body);
    }

    private Token Peek(int ahead = 0) => _current + ahead < _tokens.Count ? _tokens[_current + ahead] : _end;

    private Token Next()
    {
        var token = Peek();
        _current++;
        return token;
    }

    private TemplateException Error(string message, Token? at = null)
    {
        var token = at ?? Peek();
        var detail = token.Kind == TokenKind.EndOfInput ? "unexpected end of template" : $"at '{Describe(token)}'";
        return SourcePosition.Error(_source, token.Offset, $"Syntax error: {message} ({detail})");
    }

    private static string Describe(Token token) => token.Kind switch
    {
        TokenKind.Text => "text",
        TokenKind.StringLiteral => "'" + (token.Value.Length > 20 ? token.Value[..20] + "…" : token.Value) + "'",
        TokenKind.Comment => "comment",
        _ => token.Value,
    };

    private Token Expect(TokenKind kind, string message)
    {
        var token = Peek();
        if (token.Kind != kind) throw Error(message, token);
        _current++;
        return token;
    }

    private void ExpectIdentifier(string name)
    {
        if (!IsIdentifier(name)) throw Error($"expected '{name}'");
        _current++;
    }

    private void ExpectEndTag(string name)
    {
        Expect(TokenKind.OpenStatement, $"expected {{% {name} %}}");
        ExpectIdentifier(name);
        Expect(TokenKind.CloseStatement, "expected '%}'");
    }

    private bool Is(TokenKind kind) => Peek().Kind == kind;

    private bool Is(TokenKind first, TokenKind second) => Peek().Kind == first && Peek(1).Kind == second;

    private bool IsIdentifier(string name) => Peek() is { Kind: TokenKind.Identifier } t && t.Value == name;

    private bool IsIdentifier(string first, string second) =>
        IsIdentifier(first) && Peek(1) is { Kind: TokenKind.Identifier } t && t.Value == second;

    private bool IsStatement(params string[] names) =>
        Peek().Kind == TokenKind.OpenStatement && Peek(1) is { Kind: TokenKind.Identifier } t && names.Contains(t.Value);

    private void Enter()
    {
        if (++_depth > MaxNesting) throw Error($"template nesting deeper than {MaxNesting} levels");
    }

    private void Leave() => _depth--;

    /// <summary>Parses statements until one of <paramref name="terminators"/> starts, failing clearly at the end of input.</summary>
    private List<Node> ParseBlockUntil(params string[] terminators)
    {
        var body = new List<Node>();
        while (!IsStatement(terminators))
        {
            if (Peek().Kind == TokenKind.EndOfInput)
                throw Error($"expected {{% {string.Join(" %} or {% ", terminators)} %}}");
            body.Add(ParseAny());
        }
        return body;
    }

    private Node ParseAny()
    {
        Enter();
        try
        {
            var token = Peek();
            switch (token.Kind)
            {
                case TokenKind.Comment:
                    _current++;
                    return new CommentNode(token.Offset);
                case TokenKind.Text:
                    _current++;
                    return new StringLiteralNode(token.Offset, token.Value);
                case TokenKind.OpenStatement:
                    return ParseStatement();
                case TokenKind.OpenExpression:
                    _current++;
                    var expression = ParseExpression();
                    Expect(TokenKind.CloseExpression, "expected '}}' to close the expression");
                    return expression;
                default:
                    throw Error("unexpected token");
            }
        }
        finally
        {
            Leave();
        }
    }

    private Node ParseStatement()
    {
        var open = Expect(TokenKind.OpenStatement, "expected '{%'");
        var nameToken = Peek();
        if (nameToken.Kind != TokenKind.Identifier) throw Error("expected a statement name");
        var offset = open.Offset;
        switch (nameToken.Value)
        {
            case "set":
                _current++;
                return ParseSet(offset);
            case "if":
            {
                _current++;
                var result = ParseIf(offset);
                ExpectEndTag("endif");
                return result;
            }
            case "macro":
            {
                _current++;
                var nameNode = ParsePrimary();
                if (nameNode is not IdentifierNode name) throw Error("expected an identifier after 'macro'");
                var parameters = ParseArguments(parameters: true);
                Expect(TokenKind.CloseStatement, "expected '%}'");
                var body = ParseBlockUntil("endmacro");
                ExpectEndTag("endmacro");
                return new MacroNode(offset, name, parameters, body);
            }
            case "for":
            {
                _current++;
                var result = ParseFor(offset);
                ExpectEndTag("endfor");
                return result;
            }
            case "call":
            {
                _current++;
                List<Node>? callerParameters = null;
                if (Is(TokenKind.OpenParen)) callerParameters = ParseArguments(parameters: true);
                var callee = ParsePrimary();
                if (callee is not IdentifierNode) throw Error("expected an identifier after 'call'");
                var arguments = ParseArguments(parameters: false);
                Expect(TokenKind.CloseStatement, "expected '%}'");
                var body = ParseBlockUntil("endcall");
                ExpectEndTag("endcall");
                return new CallStatementNode(offset, new CallNode(callee.Offset, callee, arguments), callerParameters, body);
            }
            case "break":
                _current++;
                Expect(TokenKind.CloseStatement, "expected '%}'");
                return new BreakNode(offset);
            case "continue":
                _current++;
                Expect(TokenKind.CloseStatement, "expected '%}'");
                return new ContinueNode(offset);
            case "filter":
            {
                _current++;
                var filter = ParsePrimary();
                if (filter is IdentifierNode && Is(TokenKind.OpenParen)) filter = ParseCall(filter);
                Expect(TokenKind.CloseStatement, "expected '%}'");
                var body = ParseBlockUntil("endfilter");
                ExpectEndTag("endfilter");
                return new FilterStatementNode(offset, filter, body);
            }
            default:
                throw Error($"unknown statement '{nameToken.Value}'", nameToken);
        }
    }

    private Node ParseSet(int offset)
    {
        var left = ParseExpressionSequence(primary: false);
        Node? value = null;
        var body = new List<Node>();
        if (Is(TokenKind.Equals))
        {
            _current++;
            value = ParseExpressionSequence(primary: false);
        }
        else
        {
            Expect(TokenKind.CloseStatement, "expected '=' or '%}' in set");
            body = ParseBlockUntil("endset");
            Expect(TokenKind.OpenStatement, "expected {% endset %}");
            ExpectIdentifier("endset");
        }
        Expect(TokenKind.CloseStatement, "expected '%}'");
        return new SetNode(offset, left, value, body);
    }

    private IfNode ParseIf(int offset)
    {
        var test = ParseExpression();
        Expect(TokenKind.CloseStatement, "expected '%}'");
        var body = ParseBlockUntil("elif", "else", "endif");
        var alternate = new List<Node>();
        if (IsStatement("elif"))
        {
            var elifOffset = Peek().Offset;
            _current += 2;
            Enter();
            try
            {
                alternate.Add(ParseIf(elifOffset));
            }
            finally
            {
                Leave();
            }
        }
        else if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenKind.CloseStatement, "expected '%}'");
            alternate = ParseBlockUntil("endif");
        }
        return new IfNode(offset, test, body, alternate);
    }

    private ForNode ParseFor(int offset)
    {
        var loopVariable = ParseExpressionSequence(primary: true);
        if (loopVariable is not (IdentifierNode or ArrayLiteralNode { IsTuple: true }))
            throw Error("expected an identifier or a tuple for the loop variable");
        if (!IsIdentifier("in")) throw Error("expected 'in' after the loop variable");
        _current++;
        var iterable = ParseExpression();
        Expect(TokenKind.CloseStatement, "expected '%}'");
        var body = ParseBlockUntil("endfor", "else");
        var alternative = new List<Node>();
        if (IsStatement("else"))
        {
            _current += 2;
            Expect(TokenKind.CloseStatement, "expected '%}'");
            alternative = ParseBlockUntil("endfor");
        }
        return new ForNode(offset, loopVariable, iterable, body, alternative);
    }

    private Node ParseExpressionSequence(bool primary)
    {
        var first = primary ? ParsePrimary() : ParseExpression();
        if (!Is(TokenKind.Comma)) return first;
        var items = new List<Node> { first };
        while (true)
        {
            _current++;
            items.Add(primary ? ParsePrimary() : ParseExpression());
            if (!Is(TokenKind.Comma)) break;
        }
        return new ArrayLiteralNode(first.Offset, items, isTuple: true);
    }

    private Node ParseExpression()
    {
        Enter();
        try
        {
            return ParseIfExpression();
        }
        finally
        {
            Leave();
        }
    }

    private Node ParseIfExpression()
    {
        var a = ParseOr();
        if (!IsIdentifier("if")) return a;
        _current++;
        var test = ParseOr();
        if (IsIdentifier("else"))
        {
            _current++;
            Enter();
            try
            {
                return new TernaryNode(a.Offset, test, a, ParseIfExpression());
            }
            finally
            {
                Leave();
            }
        }
        return new SelectNode(a.Offset, a, test);
    }

    private Node ParseOr() => ParseKeywordOperator("or", ParseAnd);

    private Node ParseAnd() => ParseKeywordOperator("and", ParseNot);

    private Node ParseKeywordOperator(string keyword, Func<Node> operand)
    {
        var left = operand();
        while (IsIdentifier(keyword))
        {
            var op = Next();
            left = new BinaryNode(op.Offset, keyword, left, operand());
        }
        return left;
    }

    private Node ParseNot()
    {
        if (!IsIdentifier("not")) return ParseComparison();
        // `not not x` nests; the reference keeps only the outermost chain link it builds last.
        UnaryNode? result = null;
        while (IsIdentifier("not"))
        {
            var op = Next();
            Enter();
            try
            {
                result = new UnaryNode(op.Offset, "not", ParseNot());
            }
            finally
            {
                Leave();
            }
        }
        return result!;
    }

    private Node ParseComparison()
    {
        var left = ParseAdditive();
        while (true)
        {
            string op;
            var at = Peek();
            if (IsIdentifier("not", "in"))
            {
                op = "not in";
                _current += 2;
            }
            else if (IsIdentifier("in"))
            {
                op = "in";
                _current++;
            }
            else if (Is(TokenKind.ComparisonBinaryOperator))
            {
                op = Next().Value;
            }
            else
            {
                break;
            }
            left = new BinaryNode(at.Offset, op, left, ParseAdditive());
        }
        return left;
    }

    private Node ParseAdditive() => ParseLeftAssociative(TokenKind.AdditiveBinaryOperator, ParseMultiplicative);

    private Node ParseMultiplicative() => ParseLeftAssociative(TokenKind.MultiplicativeBinaryOperator, ParsePower);

    // Unlike Python, Jinja's ** is left-associative: 2 ** 3 ** 2 == (2 ** 3) ** 2.
    private Node ParsePower() => ParseLeftAssociative(TokenKind.ExponentiationBinaryOperator, ParseTest);

    private Node ParseLeftAssociative(TokenKind operatorKind, Func<Node> operand)
    {
        var left = operand();
        while (Is(operatorKind))
        {
            var op = Next();
            left = new BinaryNode(op.Offset, op.Value, left, operand());
        }
        return left;
    }

    private Node ParseTest()
    {
        var operand = ParseFilter();
        while (IsIdentifier("is"))
        {
            var at = Next();
            var negate = IsIdentifier("not");
            if (negate) _current++;
            if (ParsePrimary() is not IdentifierNode test) throw Error("expected a test name after 'is'");
            operand = new TestNode(at.Offset, operand, negate, test);
        }
        return operand;
    }

    private Node ParseFilter()
    {
        var operand = ParseUnarySign();
        while (Is(TokenKind.Pipe))
        {
            var at = Next();
            var filter = ParsePrimary();
            if (filter is not IdentifierNode) throw Error("expected a filter name after '|'");
            if (Is(TokenKind.OpenParen)) filter = ParseCall(filter);
            operand = new FilterNode(at.Offset, operand, filter);
        }
        return operand;
    }

    private Node ParseUnarySign()
    {
        var token = Peek();
        if (token.Kind is TokenKind.UnaryOperator or TokenKind.AdditiveBinaryOperator && token.Value is "-" or "+")
        {
            _current++;
            Enter();
            try
            {
                return new UnaryNode(token.Offset, token.Value, ParseUnarySign());
            }
            finally
            {
                Leave();
            }
        }
        return ParseCallMember();
    }

    private Node ParseCallMember()
    {
        var member = ParseMember(ParsePrimary());
        return Is(TokenKind.OpenParen) ? ParseCall(member) : member;
    }

    private Node ParseCall(Node callee)
    {
        Enter();
        try
        {
            Node expression = new CallNode(callee.Offset, callee, ParseArguments(parameters: false));
            expression = ParseMember(expression);
            if (Is(TokenKind.OpenParen)) expression = ParseCall(expression);
            return expression;
        }
        finally
        {
            Leave();
        }
    }

    private List<Node> ParseArguments(bool parameters)
    {
        Expect(TokenKind.OpenParen, "expected '(' to open the argument list");
        var args = new List<Node>();
        var names = new HashSet<string>();
        var sawKeyword = false;
        var sawSpread = false;
        while (!Is(TokenKind.CloseParen))
        {
            if (Peek().Kind == TokenKind.EndOfInput) throw Error("expected ')' to close the argument list");
            var isKeywordSpread = Is(TokenKind.ExponentiationBinaryOperator);
            var isSpread = Is(TokenKind.MultiplicativeBinaryOperator) && Peek().Value == "*";
            if (parameters && (isKeywordSpread || isSpread)) throw Error("argument unpacking is not allowed in parameter declarations");
            if (isKeywordSpread)
            {
                var at = Next();
                args.Add(new KeywordSpreadNode(at.Offset, ParseExpression()));
                if (Is(TokenKind.Comma)) _current++;
                if (!Is(TokenKind.CloseParen)) throw Error("'**' must be applied to the final argument");
                break;
            }

            Node argument;
            if (isSpread)
            {
                if (sawSpread) throw Error("only one '*' argument unpacking is allowed");
                sawSpread = true;
                var at = Next();
                argument = new SpreadNode(at.Offset, ParseExpression());
            }
            else
            {
                argument = ParseExpression();
                if (Is(TokenKind.Equals))
                {
                    _current++;
                    if (argument is not IdentifierNode key)
                        throw Error(parameters ? "expected an identifier for the parameter" : "expected an identifier for the keyword argument");
                    argument = new KeywordArgumentNode(key.Offset, key, ParseExpression());
                }
                if (parameters)
                {
                    var name = argument switch
                    {
                        IdentifierNode id => id.Name,
                        KeywordArgumentNode kw => kw.Key.Name,
                        _ => throw Error("expected an identifier for the parameter"),
                    };
                    if (!names.Add(name)) throw Error($"duplicate parameter name '{name}'");
                }
                if (argument is KeywordArgumentNode) sawKeyword = true;
                else if (sawKeyword)
                    throw Error(parameters ? "non-default parameter follows a default parameter" : "positional arguments must come before keyword arguments");
                else if (sawSpread) throw Error("positional arguments must not follow '*' argument unpacking");
            }
            args.Add(argument);
            if (Is(TokenKind.Comma)) _current++;
        }
        Expect(TokenKind.CloseParen, "expected ')' to close the argument list");
        return args;
    }

    private Node ParseMemberArguments(int offset)
    {
        var slices = new List<Node?>();
        var isSlice = false;
        while (!Is(TokenKind.CloseSquareBracket))
        {
            if (Peek().Kind == TokenKind.EndOfInput) throw Error("expected ']'");
            if (Is(TokenKind.Colon))
            {
                slices.Add(null);
                _current++;
                isSlice = true;
            }
            else
            {
                slices.Add(ParseExpression());
                if (Is(TokenKind.Colon))
                {
                    _current++;
                    isSlice = true;
                }
            }
        }
        if (slices.Count == 0) throw Error("expected at least one argument for member or slice expression");
        if (!isSlice) return slices[0]!;
        if (slices.Count > 3) throw Error("expected at most 3 arguments for a slice expression");
        return new SliceNode(offset, slices[0], slices.Count > 1 ? slices[1] : null, slices.Count > 2 ? slices[2] : null);
    }

    private Node ParseMember(Node target)
    {
        while (Is(TokenKind.Dot) || Is(TokenKind.OpenSquareBracket))
        {
            var op = Next();
            Node property;
            var computed = op.Kind == TokenKind.OpenSquareBracket;
            if (computed)
            {
                property = ParseMemberArguments(op.Offset);
                Expect(TokenKind.CloseSquareBracket, "expected ']'");
            }
            else
            {
                property = ParsePrimary();
                if (property is not (IdentifierNode or NumberLiteralNode { IsFloat: false }))
                    throw Error("expected an identifier or integer after '.'");
            }
            target = new MemberNode(op.Offset, target, property, computed);
        }
        return target;
    }

    private Node ParsePrimary()
    {
        var token = Next();
        switch (token.Kind)
        {
            case TokenKind.NumericLiteral:
            {
                var isFloat = token.Value.Contains('.');
                var value = double.Parse(token.Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture);
                return new NumberLiteralNode(token.Offset, value, isFloat);
            }
            case TokenKind.StringLiteral:
            {
                var value = token.Value;
                while (Is(TokenKind.StringLiteral)) value += Next().Value;
                return new StringLiteralNode(token.Offset, value);
            }
            case TokenKind.Identifier:
                return new IdentifierNode(token.Offset, token.Value);
            case TokenKind.OpenParen:
            {
                Enter();
                try
                {
                    var expression = ParseExpressionSequence(primary: false);
                    Expect(TokenKind.CloseParen, "expected ')'");
                    return expression;
                }
                finally
                {
                    Leave();
                }
            }
            case TokenKind.OpenSquareBracket:
            {
                Enter();
                try
                {
                    var values = new List<Node>();
                    while (!Is(TokenKind.CloseSquareBracket))
                    {
                        if (Peek().Kind == TokenKind.EndOfInput) throw Error("expected ']' to close the list");
                        values.Add(ParseExpression());
                        if (Is(TokenKind.Comma)) _current++;
                    }
                    _current++;
                    return new ArrayLiteralNode(token.Offset, values, isTuple: false);
                }
                finally
                {
                    Leave();
                }
            }
            case TokenKind.OpenCurlyBracket:
            {
                Enter();
                try
                {
                    var entries = new List<(Node, Node)>();
                    while (!Is(TokenKind.CloseCurlyBracket))
                    {
                        if (Peek().Kind == TokenKind.EndOfInput) throw Error("expected '}' to close the mapping");
                        var key = ParseExpression();
                        Expect(TokenKind.Colon, "expected ':' between key and value");
                        entries.Add((key, ParseExpression()));
                        if (Is(TokenKind.Comma)) _current++;
                    }
                    _current++;
                    return new ObjectLiteralNode(token.Offset, entries);
                }
                finally
                {
                    Leave();
                }
            }
            default:
                throw Error("unexpected token", token);
        }
    }
}
