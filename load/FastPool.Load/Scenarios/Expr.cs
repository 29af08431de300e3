namespace FastPool.Load.Scenarios;

/// <summary>
/// A <c>\set</c> expression: integers, variables, + - * /, parentheses and <c>random(lo, hi)</c> (inclusive).
/// Evaluated once per transaction against the client's variables.
/// </summary>
internal abstract class Expr
{
    public abstract long Evaluate(long[] variables, Random random);

    public sealed class Constant(long value) : Expr
    {
        public override long Evaluate(long[] variables, Random random) => value;
    }

    public sealed class Variable(int index) : Expr
    {
        public override long Evaluate(long[] variables, Random random) => variables[index];
    }

    public sealed class Negate(Expr operand) : Expr
    {
        public override long Evaluate(long[] variables, Random random) => -operand.Evaluate(variables, random);
    }

    public sealed class Binary(char op, Expr left, Expr right) : Expr
    {
        public override long Evaluate(long[] variables, Random random)
        {
            var l = left.Evaluate(variables, random);
            var r = right.Evaluate(variables, random);
            return op switch
            {
                '+' => l + r,
                '-' => l - r,
                '*' => l * r,

                // Division by zero is a script bug; 0 keeps the run going and the SQL shows the odd value.
                _ => r == 0 ? 0 : l / r,
            };
        }
    }

    public sealed class UniformRandom(Expr low, Expr high) : Expr
    {
        public override long Evaluate(long[] variables, Random random)
        {
            var lo = low.Evaluate(variables, random);
            var hi = high.Evaluate(variables, random);
            return hi <= lo ? lo : random.NextInt64(lo, hi + 1);
        }
    }
}
