use std::rc::Rc;

use jobs_core::prelude::*;

#[job]
async fn count(counter: Data<Rc<u32>>) -> Result<(), JobError> {
    let _ = counter;
    Ok(())
}

fn main() {}
