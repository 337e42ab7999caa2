//! What the benchmark measures, in the order it measures it. One file over
//! 400 lines on purpose: the plan reads top to bottom as it runs.

use std::{sync::Arc, time::Duration};

use dialin_proto::settings::v1::{self as settings, NumberType, settings_service_client::SettingsServiceClient};
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::{
    dialin::{Backend, Dialin},
    echo,
    load::{self, Figures, Load},
    machine::{self, Busy, CpuTicks, Usage},
    smtp::{self, SmtpSink},
};

pub struct Plan {
    pub callers: usize,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Users licensed in each onboarding run.
    pub users: usize,
    pub smtp_connections: usize,
    /// Deadline for the emails of one onboarding run.
    pub email_deadline: Duration,
}

impl Plan {
    fn load(&self) -> Load {
        Load {
            callers: self.callers,
            warmup: self.warmup,
            duration: self.duration,
            rate: None,
        }
    }

    fn half_of(&self, saturating: &Figures) -> Load {
        Load {
            rate: Some((saturating.throughput() / 2.0).max(1.0)),
            ..self.load()
        }
    }
}

pub struct Ceilings {
    pub echo: Figures,
    pub echo_half: Figures,
    pub lettre_per_second: f64,
    pub lettre_spent: Spent,
}

/// What the machine and the sink spent over one measured stretch.
pub struct Spent {
    /// How busy the whole machine was.
    pub machine_busy: Option<Busy>,
    /// The sink's CPU time as a share of one core.
    pub sink_busy: f64,
}

/// Watches the machine and the sink from the start of a stretch.
struct Stretch<'a> {
    sink: &'a SmtpSink,
    started: Instant,
    machine: Option<CpuTicks>,
    sink_cpu_seconds: f64,
}

impl<'a> Stretch<'a> {
    fn start(sink: &'a SmtpSink) -> Self {
        Self {
            sink,
            started: Instant::now(),
            machine: CpuTicks::now(),
            sink_cpu_seconds: sink.cpu_seconds(),
        }
    }

    fn seconds(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn spent(&self) -> Spent {
        Spent {
            machine_busy: machine::busy_since(self.machine),
            sink_busy: (self.sink.cpu_seconds() - self.sink_cpu_seconds) / self.seconds(),
        }
    }
}

pub struct Onboarding {
    pub users: usize,
    pub seconds: f64,
    /// Both services' CPU seconds over the run.
    pub cpu_seconds: f64,
    pub spent: Spent,
}

impl Onboarding {
    pub fn emails_per_second(&self) -> f64 {
        self.users as f64 / self.seconds
    }

    pub fn cpu_per_thousand(&self) -> f64 {
        self.cpu_seconds / (self.users as f64 / 1000.0)
    }
}

pub struct DialinFigures {
    pub backend: Backend,
    pub idle: (Usage, Usage),
    pub peak: (Usage, Usage),
    pub get_settings: Figures,
    pub get_settings_half: Figures,
    pub reset_pin_on: Figures,
    pub reset_pin_on_half: Figures,
    pub reset_pin_off: Figures,
    pub assign_license: Figures,
    pub onboarding_batch: Onboarding,
    pub onboarding_single: Onboarding,
    pub suppressed_per_second: f64,
    /// How busy the whole machine was over the suppressed path.
    pub suppressed_machine_busy: Option<Busy>,
}

pub async fn ceilings(plan: &Plan, sink: &SmtpSink) -> Result<Ceilings, String> {
    let addr = echo::start().await.map_err(|error| format!("echo server: {error}"))?;
    let channels = load::connect(addr, plan.connections)
        .await
        .map_err(|error| error.to_string())?;
    let echo_call = |channel: Channel, _| async move {
        echo::echo_client::EchoClient::new(channel)
            .echo(echo::EchoMessage {
                tenant_id: "contoso".into(),
            })
            .await
            .map(drop)
    };
    let echo = load::run(plan.load(), &channels, echo_call).await;
    let echo_half = load::run(plan.half_of(&echo), &channels, echo_call).await;
    let stretch = Stretch::start(sink);
    let lettre_per_second = smtp::lettre_ceiling(sink.addr, plan.smtp_connections, plan.users.min(50_000)).await?;
    Ok(Ceilings {
        echo,
        echo_half,
        lettre_per_second,
        lettre_spent: stretch.spent(),
    })
}

const TOLL: &str = "+14255550100";
/// Users a ResetPin run picks from.
const POOL: usize = 1000;

pub async fn dialin(plan: &Plan, backend: Backend, sink: &SmtpSink) -> Result<DialinFigures, String> {
    let dialin = Dialin::start(backend, sink.addr, plan.smtp_connections, &[]).await?;
    let outcome = measure(plan, backend, &dialin, sink).await;
    dialin.stop().await;
    outcome
}

async fn measure(plan: &Plan, backend: Backend, dialin: &Dialin, sink: &SmtpSink) -> Result<DialinFigures, String> {
    let channels = load::connect(dialin.settings_addr, plan.connections)
        .await
        .map_err(|error| error.to_string())?;
    let mut client = SettingsServiceClient::new(channels[0].clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = dialin.usage();

    for tenant in ["bench", "batch", "single", "quiet"] {
        add_toll_number(&mut client, tenant).await?;
    }
    let pool = license_batches(&channels, "bench", "pool", POOL.min(plan.users), 2).await?;
    dialin
        .wait_for_emails(Some("SENT"), pool as u64, plan.email_deadline)
        .await?;

    let get_settings_call = |channel: Channel, _| async move {
        SettingsServiceClient::new(channel)
            .get_tenant_settings(settings::GetTenantSettingsRequest {
                tenant_id: "bench".into(),
            })
            .await
            .map(drop)
    };
    eprintln!("  GetTenantSettings …");
    let get_settings = load::run(plan.load(), &channels, get_settings_call).await;
    let get_settings_half = load::run(plan.half_of(&get_settings), &channels, get_settings_call).await;

    let reset_pin_call = move |channel: Channel, sequence: u64| async move {
        SettingsServiceClient::new(channel)
            .reset_pin(settings::ResetPinRequest {
                tenant_id: "bench".into(),
                user_id: format!("pool-{}", sequence % pool as u64),
                ..Default::default()
            })
            .await
            .map(drop)
    };
    let mut queued = dialin.emails_decided().await?;
    eprintln!("  ResetPin …");
    let reset_pin_on = load::run(plan.load(), &channels, reset_pin_call).await;
    let reset_pin_on_half = load::run(plan.half_of(&reset_pin_on), &channels, reset_pin_call).await;
    queued += reset_pin_on.all_ok + reset_pin_on_half.all_ok;
    dialin.wait_for_emails(None, queued, plan.email_deadline).await?;

    set_switch(&mut client, "bench", false).await?;
    let reset_pin_off = load::run(plan.load(), &channels, reset_pin_call).await;
    queued += reset_pin_off.all_ok;

    let assign_call = |channel: Channel, sequence: u64| async move {
        SettingsServiceClient::new(channel)
            .assign_license(license_request("bench", &format!("single-{sequence}")))
            .await
            .map(drop)
    };
    eprintln!("  AssignLicense …");
    let assign_license = load::run(plan.load(), &channels, assign_call).await;
    queued += assign_license.all_ok;
    dialin.wait_for_emails(None, queued, plan.email_deadline).await?;

    // Bulk onboarding, switch on: from the first call to the last email accepted by the sink.
    eprintln!("  onboarding by AssignLicenses …");
    let before = cpu(dialin);
    let stretch = Stretch::start(sink);
    let sent_before = dialin.emails("SENT").await?;
    license_batches(&channels, "batch", "user", plan.users, 2).await?;
    dialin
        .wait_for_emails(Some("SENT"), sent_before + plan.users as u64, plan.email_deadline)
        .await?;
    let onboarding_batch = Onboarding {
        users: plan.users,
        seconds: stretch.seconds(),
        cpu_seconds: cpu(dialin) - before,
        spent: stretch.spent(),
    };

    let before = cpu(dialin);
    let stretch = Stretch::start(sink);
    let sent_before = dialin.emails("SENT").await?;
    eprintln!("  onboarding by single AssignLicense calls …");
    license_singly(&channels, "single", plan.users, plan.callers).await?;
    dialin
        .wait_for_emails(Some("SENT"), sent_before + plan.users as u64, plan.email_deadline)
        .await?;
    let onboarding_single = Onboarding {
        users: plan.users,
        seconds: stretch.seconds(),
        cpu_seconds: cpu(dialin) - before,
        spent: stretch.spent(),
    };
    let peak = dialin.usage();

    // The suppressed path: the switch off, every event recorded as SUPPRESSED.
    eprintln!("  the suppressed path …");
    set_switch(&mut client, "quiet", false).await?;
    let suppressed_before = dialin.emails("SUPPRESSED").await?;
    let stretch = Stretch::start(sink);
    license_batches(&channels, "quiet", "user", plan.users, 2).await?;
    dialin
        .wait_for_emails(
            Some("SUPPRESSED"),
            suppressed_before + plan.users as u64,
            plan.email_deadline,
        )
        .await?;
    let suppressed_per_second = plan.users as f64 / stretch.seconds();
    let suppressed_machine_busy = stretch.spent().machine_busy;

    Ok(DialinFigures {
        backend,
        idle,
        peak,
        get_settings,
        get_settings_half,
        reset_pin_on,
        reset_pin_on_half,
        reset_pin_off,
        assign_license,
        onboarding_batch,
        onboarding_single,
        suppressed_per_second,
        suppressed_machine_busy,
    })
}

fn cpu(dialin: &Dialin) -> f64 {
    let (settings, notifier) = dialin.usage();
    settings.cpu_seconds + notifier.cpu_seconds
}

pub(crate) fn license_request(tenant_id: &str, user_id: &str) -> settings::AssignLicenseRequest {
    settings::AssignLicenseRequest {
        tenant_id: tenant_id.into(),
        user_id: user_id.into(),
        email: format!("{user_id}@bench.example"),
        display_name: format!("User {user_id}"),
        ..Default::default()
    }
}

pub(crate) async fn add_toll_number(
    client: &mut SettingsServiceClient<Channel>,
    tenant_id: &str,
) -> Result<(), String> {
    client
        .add_service_number(settings::AddServiceNumberRequest {
            tenant_id: tenant_id.into(),
            number: TOLL.into(),
            r#type: NumberType::Toll.into(),
            country: Some("US".into()),
        })
        .await
        .map(drop)
        .map_err(|status| format!("AddServiceNumber: {status:?}"))
}

async fn set_switch(client: &mut SettingsServiceClient<Channel>, tenant_id: &str, on: bool) -> Result<(), String> {
    client
        .update_tenant_settings(settings::UpdateTenantSettingsRequest {
            tenant_id: tenant_id.into(),
            automatically_send_emails_to_users: Some(on),
            ..Default::default()
        })
        .await
        .map(drop)
        .map_err(|status| format!("UpdateTenantSettings: {status:?}"))
}

/// Licenses `<prefix>-0` … `<prefix>-<count-1>` with AssignLicenses, 1,000 a
/// call, `concurrency` calls at a time; returns how many were licensed.
pub(crate) async fn license_batches(
    channels: &[Channel],
    tenant_id: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> Result<usize, String> {
    let tenant_id = tenant_id.to_owned();
    let prefix = prefix.to_owned();
    share_out(channels, count, 1000, concurrency, move |mut client, users| {
        let request = settings::AssignLicensesRequest {
            tenant_id: tenant_id.clone(),
            users: users
                .map(|i| {
                    let request = license_request(&tenant_id, &format!("{prefix}-{i}"));
                    settings::UserToLicense {
                        user_id: request.user_id,
                        email: request.email,
                        display_name: request.display_name,
                        ..Default::default()
                    }
                })
                .collect(),
        };
        async move {
            let mut retried = false;
            loop {
                match client.assign_licenses(request.clone()).await {
                    Ok(response) => {
                        let refused = response.into_inner().results.into_iter().find_map(|result| {
                            result
                                .error
                                .filter(|error| !(retried && error.message.contains(ALREADY_LICENSED)))
                        });
                        return match refused {
                            Some(error) => Err(format!("AssignLicenses refused an entry: {}", error.message)),
                            None => Ok(()),
                        };
                    }
                    Err(status) if cut_off(&status) && !retried => retried = true,
                    Err(status) => return Err(format!("AssignLicenses: {status:?}")),
                }
            }
        }
    })
    .await?;
    Ok(count)
}

/// Licenses `count` users with single AssignLicense calls, `callers` at a time.
async fn license_singly(channels: &[Channel], tenant_id: &str, count: usize, callers: usize) -> Result<(), String> {
    let tenant_id = tenant_id.to_owned();
    share_out(channels, count, 1, callers, move |mut client, users| {
        let request = license_request(&tenant_id, &format!("user-{}", users.start));
        async move {
            let mut retried = false;
            loop {
                match client.assign_license(request.clone()).await {
                    Ok(_) => return Ok(()),
                    Err(status) if retried && status.message().contains(ALREADY_LICENSED) => return Ok(()),
                    Err(status) if cut_off(&status) && !retried => retried = true,
                    Err(status) => return Err(format!("AssignLicense: {status:?}")),
                }
            }
        }
    })
    .await
}

/// What settings answers when a retried call finds its first attempt's work done.
const ALREADY_LICENSED: &str = "already holds a license";

/// A call cut off with its connection: the server closes every connection
/// after a while (so that clients spread over new replicas), and a call sent as
/// it does so fails without reaching it, or after it committed. Tried again
/// once; the caller counts its own earlier work as done.
fn cut_off(status: &tonic::Status) -> bool {
    matches!(status.code(), tonic::Code::Cancelled | tonic::Code::Unavailable)
}

/// `callers` tasks take the items `0..count`, `step` at a time, and hand each
/// range to `work` until none is left.
async fn share_out<Work, Fut>(
    channels: &[Channel],
    count: usize,
    step: usize,
    callers: usize,
    work: Work,
) -> Result<(), String>
where
    Work: Fn(SettingsServiceClient<Channel>, std::ops::Range<usize>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..callers {
        let client = SettingsServiceClient::new(channels[caller % channels.len()].clone());
        let (next, work) = (Arc::clone(&next), work.clone());
        tasks.spawn(async move {
            loop {
                let first = next.fetch_add(step, std::sync::atomic::Ordering::Relaxed);
                if first >= count {
                    return Ok::<(), String>(());
                }
                work(client.clone(), first..(first + step).min(count)).await?;
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.map_err(|error| error.to_string())??;
    }
    Ok(())
}
