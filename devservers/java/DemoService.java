// A JVM for PyScaler's JMX tests: registers pyscaler.test:type=Demo, prints
// READY once it is visible through the platform MBean server (and so through
// the JMX remote agent the launcher enables with -Dcom.sun.management.jmxremote.*),
// then obeys commands on standard input so a test can change values without JMX:
//
//   set Value 12.5 | set Requests 7 | set Healthy false | set PoolUsed 10
//   set PoolMax 100 | set Label text | set SlowMillis 3000 | get Value | quit
//
// Every command is answered with one line: "OK [value]" or "ERR reason".
// Run with `java devservers/java/DemoService.java` (Java 11+ single-file source launch).

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.lang.management.ManagementFactory;
import javax.management.MBeanServer;
import javax.management.ObjectName;
import javax.management.StandardMBean;
import javax.management.openmbean.CompositeData;
import javax.management.openmbean.CompositeDataSupport;
import javax.management.openmbean.CompositeType;
import javax.management.openmbean.OpenDataException;
import javax.management.openmbean.OpenType;
import javax.management.openmbean.SimpleType;

public class DemoService {

    public interface DemoMBean {
        double getValue();
        void setValue(double value);
        long getRequests();
        boolean isHealthy();
        CompositeData getPool();
        String getLabel();
        double getSlow();
    }

    public static final class Demo implements DemoMBean {
        private static final CompositeType POOL_TYPE;
        static {
            try {
                POOL_TYPE = new CompositeType("Pool", "A pool's usage", new String[] {"used", "max"},
                        new String[] {"used", "max"}, new OpenType<?>[] {SimpleType.LONG, SimpleType.LONG});
            } catch (OpenDataException e) {
                throw new ExceptionInInitializerError(e);
            }
        }

        volatile double value = 1.5;
        volatile long requests = 0;
        volatile boolean healthy = true;
        volatile long poolUsed = 3;
        volatile long poolMax = 10;
        volatile String label = "demo";
        volatile long slowMillis = 0;

        public double getValue() { return value; }
        public void setValue(double v) { value = v; }
        public long getRequests() { return requests; }
        public boolean isHealthy() { return healthy; }
        public String getLabel() { return label; }

        public CompositeData getPool() {
            try {
                return new CompositeDataSupport(POOL_TYPE, new String[] {"used", "max"},
                        new Object[] {poolUsed, poolMax});
            } catch (OpenDataException e) {
                throw new IllegalStateException(e);
            }
        }

        // A getter that takes SlowMillis to answer: a JVM that hangs mid-read.
        public double getSlow() {
            try {
                Thread.sleep(slowMillis);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return value;
        }
    }

    public static void main(String[] args) throws Exception {
        Demo demo = new Demo();
        MBeanServer server = ManagementFactory.getPlatformMBeanServer();
        server.registerMBean(new StandardMBean(demo, DemoMBean.class), new ObjectName("pyscaler.test:type=Demo"));
        System.out.println("READY");
        System.out.flush();

        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] parts = line.trim().split("\\s+", 3);
            String reply;
            try {
                reply = handle(demo, parts);
            } catch (RuntimeException e) {
                reply = "ERR " + e;
            }
            if (reply == null) {
                break;
            }
            System.out.println(reply);
            System.out.flush();
        }
        // stdin closed or "quit": the launcher is gone or wants us to stop.
        System.exit(0);
    }

    private static String handle(Demo demo, String[] parts) {
        String command = parts[0];
        if (command.equals("quit")) {
            return null;
        }
        if (command.equals("get") && parts.length == 2) {
            switch (parts[1]) {
                case "Value": return "OK " + demo.value;
                case "Requests": return "OK " + demo.requests;
                case "Healthy": return "OK " + demo.healthy;
                default: return "ERR unknown attribute " + parts[1];
            }
        }
        if (!command.equals("set") || parts.length != 3) {
            return "ERR usage: set <Attribute> <value> | get <Attribute> | quit";
        }
        String v = parts[2];
        switch (parts[1]) {
            case "Value": demo.value = Double.parseDouble(v); break;
            case "Requests": demo.requests = Long.parseLong(v); break;
            case "Healthy": demo.healthy = Boolean.parseBoolean(v); break;
            case "PoolUsed": demo.poolUsed = Long.parseLong(v); break;
            case "PoolMax": demo.poolMax = Long.parseLong(v); break;
            case "Label": demo.label = v; break;
            case "SlowMillis": demo.slowMillis = Long.parseLong(v); break;
            default: return "ERR unknown attribute " + parts[1];
        }
        return "OK";
    }
}
