// A Flink job that runs until it is cancelled, slowly (one record per 100 ms), so the
// HTTP gateway's tests can submit, watch and cancel it on a real Flink cluster.
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.streaming.api.functions.sink.v2.DiscardingSink;

public class Forever {
    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.fromSequence(0, Long.MAX_VALUE)
            .map(x -> { Thread.sleep(100); return x; })
            .returns(Types.LONG)
            .sinkTo(new DiscardingSink<>());
        env.execute("keygate-forever");
    }
}
